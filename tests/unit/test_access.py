"""The PatientContext decides whose record a request reads, and what a proxy may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.access import patient_context_resolve
from app.clock import set_clock
from tests.factories import actor_for, grant, make_patient, make_person, years_ago


async def test_an_account_reads_its_own_record_by_default() -> None:
    person = await make_person()
    context = await person.context()
    assert context.patient.id == person.patient.id
    assert context.is_self
    assert context.sees_confidential
    assert context.may("results")
    assert context.may("billing")


async def test_a_live_proxy_grant_switches_to_the_other_record() -> None:
    parent = await make_person("Maria")
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, child, kind="proxy", relationship="parent")
    context = await parent.context(acting_patient_id=child.id)
    assert context.patient.id == child.id
    assert not context.is_self
    assert not context.sees_confidential


async def test_a_chosen_record_without_a_grant_falls_back_to_the_own_record() -> None:
    person = await make_person()
    stranger = await make_patient(given="Stranger")
    context = await person.context(acting_patient_id=stranger.id)
    assert context.patient.id == person.patient.id


async def test_revoked_and_expired_grants_open_nothing() -> None:
    person = await make_person()
    revoked = await make_patient(given="Revoked")
    expired = await make_patient(given="Expired")
    past = datetime.now(UTC) - timedelta(minutes=1)
    await grant(person.account, revoked, kind="proxy", relationship="child", revoked_at=past)
    await grant(person.account, expired, kind="proxy", relationship="child", expires_at=past)
    for other in (revoked, expired):
        context = await person.context(acting_patient_id=other.id)
        assert context.patient.id == person.patient.id


async def test_a_billing_only_proxy_may_not_read_results() -> None:
    caregiver = await make_person("Care")
    elder = await make_patient(given="Elder")
    await grant(caregiver.account, elder, kind="proxy", relationship="child", scope="billing")
    context = await caregiver.context(acting_patient_id=elder.id)
    assert context.may("billing")
    assert not context.may("results")
    assert not context.may("messages")


async def test_an_account_without_any_live_grant_has_no_context() -> None:
    person = await make_person()
    from app.tables import AccessGrant

    await AccessGrant.update({AccessGrant.revoked_at: datetime.now(UTC)}).where(
        AccessGrant.account == person.account.id
    )
    assert await patient_context_resolve(actor_for(person.account)) is None


async def test_a_caregiver_without_an_own_record_lands_on_the_person_they_care_for() -> None:
    from tests.factories import make_account

    caregiver = await make_account("Only Caregiver")
    elder = await make_patient(given="Elder")
    await grant(caregiver, elder, kind="proxy", relationship="child")
    context = await patient_context_resolve(actor_for(caregiver))
    assert context is not None
    assert context.patient.id == elder.id


async def test_a_guardian_grant_ends_at_18_unless_the_adult_patient_gave_it() -> None:
    parent = await make_person("Maria")
    teen = await make_patient(given="Lucas", birth=years_ago(17, days=360))
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    assert (await parent.context(teen.id)).patient.id == teen.id
    after_birthday = datetime.now(UTC) + timedelta(days=10)
    set_clock(lambda: after_birthday)
    assert (await parent.context(teen.id)).patient.id == parent.patient.id

    # Once adult, the patient may give the parent access again, and that grant stays.
    from app.tables import AccessGrant

    await AccessGrant.update({AccessGrant.granted_by_account: parent.account.id}).where(
        AccessGrant.patient == teen.id
    )
    assert (await parent.context(teen.id)).patient.id == teen.id


async def test_a_guardian_of_an_adolescent_keeps_visits_bills_results_and_the_record_only() -> None:
    parent = await make_person("Maria")
    teen = await make_patient(given="Lucas", birth=years_ago(15))
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    await grant(parent.account, child, kind="proxy", relationship="parent")
    teen_context = await parent.context(teen.id)
    # Results and the record without their confidential items (the grants selector).
    assert teen_context.areas == {"appointments", "billing", "results", "record"}
    assert not teen_context.may("messages")
    assert (await parent.context(child.id)).may("messages")


async def test_two_grants_for_one_person_count_once_with_the_wider_scope() -> None:
    caregiver = await make_person("Care")
    elder = await make_patient(given="Elder")
    await grant(caregiver.account, elder, kind="proxy", relationship="child", scope="billing")
    await grant(caregiver.account, elder, kind="proxy", relationship="child", scope="full")
    context = await caregiver.context(elder.id)
    assert context.may("results")
    assert [p.first_name for p in context.profiles].count("Elder") == 1


async def test_birthdays_turn_over_at_the_clinic_s_midnight_not_utc_s() -> None:
    from zoneinfo import ZoneInfo

    from app.clinic import DEFAULT_PROFILE, clinic_profile_set
    from app.tables import Patient

    clinic_profile_set(DEFAULT_PROFILE)  # America/New_York
    parent = await make_person("Maria")
    teen = await make_patient(given="Lucas")
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    # 01:00 UTC on the 18th birthday is still the evening before in New York.
    birthday = datetime(2027, 6, 10, 1, 0, tzinfo=UTC)
    await Patient.update({Patient.birth_date: birthday.date().replace(year=2009)}).where(
        Patient.id == teen.id
    )
    set_clock(lambda: birthday)
    assert birthday.astimezone(ZoneInfo("America/New_York")).day == 9
    assert (await parent.context(teen.id)).patient.id == teen.id
    set_clock(lambda: birthday + timedelta(hours=5))  # 00:00 in New York
    assert (await parent.context(teen.id)).patient.id == parent.patient.id
