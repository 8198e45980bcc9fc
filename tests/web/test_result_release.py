"""Results go out when final; chosen tests are held until a clinician releases them or the
hold ends, and the patient is told with no health detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient

from app.clock import set_clock, utcnow
from app.services.results.release import release_plan, results_release_due
from app.tables import LabReport, OutboxMessage, Patient
from tests.factories import Person, make_person, make_report, unique
from tests.web.conftest import csrf_from, sign_in, staff_signed_in


def test_pathology_is_held_and_everything_else_goes_out_at_once() -> None:
    issued = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert release_plan("2345-7", issued).released_at == issued
    held = release_plan("22637-3", issued)
    assert held.released_at is None
    assert held.hold_until == issued + timedelta(hours=72)


async def _held_report(phone: str) -> tuple[Person, LabReport]:
    person = await make_person("Held")
    await Patient.update({Patient.phone: phone}).where(Patient.id == person.patient.id)
    report = await make_report(person.patient, name="Skin biopsy", released=False)
    await LabReport.update({LabReport.hold_until: utcnow() + timedelta(hours=72)}).where(
        LabReport.id == report.id
    )
    return person, report


async def test_a_clinician_releases_a_held_result_with_a_note(client: AsyncClient) -> None:
    phone = f"+1555016{unique('')[-4:]}"
    person, report = await _held_report(phone)
    await sign_in(client, person)
    assert "Skin biopsy" not in (await client.get("/results")).text
    await staff_signed_in(client, role="front_desk")
    assert (await client.get("/staff/results")).status_code == 403
    await staff_signed_in(client, role="clinician")
    inbox = await client.get("/staff/results")
    assert "Skin biopsy" in inbox.text
    assert "Held until" in inbox.text
    released = await client.post(
        f"/staff/results/{report.public_id}",
        data={
            "comment": "Nothing to worry about.",
            "release": "yes",
            "_csrf_token": csrf_from(inbox.text),
        },
        follow_redirects=False,
    )
    assert released.status_code == 303
    page = await client.get("/results")
    assert "Skin biopsy" in page.text
    assert "Nothing to worry about." in page.text
    notice = await OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == phone)
    assert [row["body"] for row in notice] == [
        "You have a new test result. Open the patient portal to see it."
    ]


async def test_a_hold_ends_by_itself_once(client: AsyncClient) -> None:
    phone = f"+1555015{unique('')[-4:]}"
    _, report = await _held_report(phone)
    assert await results_release_due() == 0
    later = utcnow() + timedelta(hours=73)
    set_clock(lambda: later)
    assert await results_release_due() >= 1
    assert await results_release_due() == 0
    row = await LabReport.select(LabReport.released_at).where(LabReport.id == report.id)
    assert row[0]["released_at"] is not None
    assert await OutboxMessage.count().where(OutboxMessage.recipient == phone) == 1
