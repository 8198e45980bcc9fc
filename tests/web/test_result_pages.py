"""A report and a test page: the value, its range bar, the plain-language explanation and
the trend, read only through the patient context."""

from __future__ import annotations

import re

from httpx import AsyncClient

from app.tables import LabObservation, LabReport
from tests.factories import grant, make_person, make_report, years_ago
from tests.web.conftest import sign_in


async def _test_link(client: AsyncClient, report_id: str) -> str:
    page = await client.get(f"/results/{report_id}")
    assert page.status_code == 200
    link = re.search(rf'href="(/results/{report_id}/[^"]+)"', page.text)
    assert link is not None
    return link.group(1)


async def test_opening_a_report_is_what_clears_new(client: AsyncClient) -> None:
    person = await make_person()
    report = await make_report(person.patient)
    await sign_in(client, person)
    assert "New" in (await client.get("/results")).text
    assert "New" in (await client.get("/results")).text  # the list alone does not clear it
    await client.get(f"/results/{report.public_id}")
    viewed = await LabReport.select(LabReport.first_viewed_at).where(LabReport.id == report.id)
    assert viewed[0]["first_viewed_at"] is not None


async def test_a_test_page_shows_value_range_explanation_and_trend(client: AsyncClient) -> None:
    person = await make_person()
    for days_ago, value in ((300, 92.0), (200, 97.0), (100, 101.0)):
        await make_report(person.patient, days_ago=days_ago, value=value)
    latest = await make_report(person.patient, days_ago=2, value=118.0)
    await sign_in(client, person)
    page = await client.get(await _test_link(client, latest.public_id))
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "118" in text
    assert 'class="range-bar"' in text
    assert "Your value 118 mg/dL, usual range 70–99" in text
    assert "What the test measures" in text  # glucose has catalog content
    assert 'class="trend"' in text
    assert text.count('class="point') == 4
    assert "Show as a table" in text


async def test_the_same_test_page_in_spanish(client: AsyncClient) -> None:
    person = await make_person()
    latest = await make_report(person.patient, value=80.0)
    await sign_in(client, person)
    link = await _test_link(client, latest.public_id)
    page = await client.get(link, headers={"Accept-Language": "es"})
    assert "Qué mide la prueba" in page.text
    assert "Glucosa" in page.text


async def test_an_unknown_test_still_shows_its_number_and_range(client: AsyncClient) -> None:
    person = await make_person()
    report = await make_report(person.patient)
    await LabObservation.update({LabObservation.loinc: "99999-9"}).where(
        LabObservation.report == report.id
    )
    await sign_in(client, person)
    page = await client.get(await _test_link(client, report.public_id))
    assert "105" in page.text
    assert "We do not have an explanation for this test yet." in page.text


async def test_held_other_people_s_and_confidential_reports_are_not_found(
    client: AsyncClient,
) -> None:
    person, other = await make_person(), await make_person()
    held = await make_report(person.patient, released=False)
    theirs = await make_report(other.patient)
    await sign_in(client, person)
    assert (await client.get(f"/results/{held.public_id}")).status_code == 404
    assert (await client.get(f"/results/{theirs.public_id}")).status_code == 404

    teen = await make_person("Teen", birth=years_ago(15))
    secret = await make_report(teen.patient, confidential=True)
    parent = await make_person("Parent")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await sign_in(client, parent, acting_patient_id=teen.patient.id)
    assert (await client.get(f"/results/{secret.public_id}")).status_code == 404
    await sign_in(client, teen)
    assert (await client.get(f"/results/{secret.public_id}")).status_code == 200


async def test_in_spanish_the_tests_carry_their_spanish_names(client: AsyncClient) -> None:
    person = await make_person()
    report = await make_report(person.patient)
    await sign_in(client, person)
    english = await client.get(f"/results/{report.public_id}")
    assert "Glucose" in english.text
    spanish = await client.get(f"/results/{report.public_id}", headers={"Accept-Language": "es"})
    assert "Glucosa" in spanish.text
    assert ">Glucose<" not in spanish.text
