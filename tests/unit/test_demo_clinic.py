"""The demo clinic is realistic, complete for the screens that exist, and deterministic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.access import patient_context_resolve
from app.services.demo.clinic import PERSONAS, demo_clinic_seed
from app.services.enrollment import invite_create
from app.services.home import home_summary
from app.services.self_access import SelfAccessError
from app.tables import AccessGrant, Clinician, LabReport, Location, Patient
from tests.factories import actor_for

TODAY = date(2026, 3, 10)


def _age(birth: date) -> int:
    return TODAY.year - birth.year - ((TODAY.month, TODAY.day) < (birth.month, birth.day))


async def _roster() -> list[tuple[str, str, str, date]]:
    rows = await Patient.select(
        Patient.mrn, Patient.given_name, Patient.family_name, Patient.birth_date
    ).order_by(Patient.mrn)
    return [(r["mrn"], r["given_name"], r["family_name"], r["birth_date"]) for r in rows]


async def test_the_demo_clinic_has_what_the_screens_need_and_is_deterministic() -> None:
    assert await demo_clinic_seed(today=TODAY, reset=True)
    assert await Location.count() == 2
    assert await Clinician.count() == 6
    roster = await _roster()
    assert len(roster) >= 300
    ages = [_age(birth) for *_, birth in roster]
    assert min(ages) < 5
    assert max(ages) > 85

    # Families: a parent of a 7- and a 15-year-old; an adult caring for a parent of 82.
    grants = await AccessGrant.select(
        AccessGrant.account.display_name,
        AccessGrant.patient.given_name,
        AccessGrant.patient.birth_date,
    ).where(AccessGrant.kind == "proxy")
    cared_for = {
        (g["account.display_name"], g["patient.given_name"], _age(g["patient.birth_date"]))
        for g in grants
    }
    assert {
        ("Maria Lopez", "Emma", 7),
        ("Maria Lopez", "Lucas", 15),
        ("David Chen", "Walter", 82),
    } <= cared_for

    # Two years of lab history.
    oldest = await LabReport.select(LabReport.effective_at).order_by(LabReport.effective_at).first()
    assert oldest is not None
    assert oldest["effective_at"].date() < TODAY - timedelta(days=700)

    # Same day, same clinic.
    assert await demo_clinic_seed(today=TODAY, reset=True)
    assert await _roster() == roster


async def test_seeding_twice_changes_nothing_without_reset() -> None:
    await demo_clinic_seed(today=TODAY, reset=True)
    count = await Patient.count()
    assert not await demo_clinic_seed(today=TODAY)
    assert await Patient.count() == count


async def test_every_persona_has_a_home_with_a_next_visit_and_new_results() -> None:
    today = datetime.now(UTC).date()
    await demo_clinic_seed(today=today, reset=True)
    for persona in PERSONAS:
        grant = (
            await AccessGrant.select(AccessGrant.account)
            .where(AccessGrant.patient.mrn == persona.mrn, AccessGrant.kind == "self")
            .first()
        )
        assert grant is not None, persona.slug
        from app.tables import Account

        account = await Account.objects().get(Account.id == grant["account"])
        assert account is not None
        context = await patient_context_resolve(actor_for(account))
        assert context is not None
        summary = await home_summary(context)
        assert summary.next_visit is not None, persona.slug
        assert summary.next_visit.starts_at > datetime.now(UTC) - timedelta(minutes=1)
        assert summary.new_results > 0, persona.slug


async def test_the_demo_teenager_can_be_invited_on_his_own_phone_and_the_child_cannot() -> None:
    await demo_clinic_seed(reset=True)
    lucas = await Patient.objects().where(Patient.mrn == "RFH-100003").first()
    assert lucas is not None
    assert (lucas.phone_is_own, lucas.email_is_own) == (True, False)
    invitation = await invite_create(
        mrn="RFH-100003", via="sms", base_url="https://portal.example", clinic_name="C"
    )
    assert invitation.key
    with pytest.raises(SelfAccessError, match="child"):
        await invite_create(
            mrn="RFH-100002", via="qr", base_url="https://portal.example", clinic_name="C"
        )


async def test_the_demo_families_have_health_records_and_lucas_keeps_his_private() -> None:
    from app.services.record import record_overview
    from app.tables import Account

    assert await demo_clinic_seed(today=TODAY, reset=True)
    maria = await Account.objects().where(Account.display_name == "Maria Lopez").first()
    lucas = await Patient.select(Patient.id).where(Patient.mrn == "RFH-100003").first()
    assert maria is not None
    assert lucas is not None
    own = await patient_context_resolve(actor_for(maria))
    assert own is not None
    record = await record_overview(own)
    assert record.medications
    assert record.allergies
    assert record.immunizations
    assert record.problems
    assert record.visits
    assert record.visits[0].documents == 1
    as_mother = await patient_context_resolve(actor_for(maria, acting_patient_id=lucas["id"]))
    assert as_mother is not None
    seen = await record_overview(as_mother)
    names = {line.name for line in seen.medications} | {p.shown_name for p in seen.problems}
    assert "Cetirizine 10 mg tablet" in names
    assert "Sertraline 50 mg tablet" not in names
    assert "Depression" not in names
    assert all(visit.reason != "Follow-up on mood" for visit in seen.visits)
