"""Enrollment links work once, for a week, for the right date of birth, and say little."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from app.clock import set_clock
from app.services.enrollment import (
    MAX_DATE_ATTEMPTS,
    EnrollmentError,
    enroll_confirm,
    invite_create,
    invite_is_open,
)
from app.services.self_access import SelfAccessError
from app.tables import AccessGrant, Account, EnrollmentInvite, OutboxMessage, Patient
from tests.factories import (
    grant,
    make_account,
    make_patient,
    make_person,
    unique,
    with_contacts,
    years_ago,
)

BASE = "https://portal.example"
BIRTH = date(1980, 5, 17)


async def _invite(mrn: str, via: str = "print") -> str:
    invitation = await invite_create(mrn=mrn, via=via, base_url=BASE, clinic_name="Test Clinic")
    return invitation.link.rsplit("/", 1)[1]


async def _confirm(token: str, birth: date = BIRTH) -> str:
    return await enroll_confirm(
        token=token, birth_date=birth, lifetime=timedelta(hours=1), ip="127.0.0.1", user_agent="t"
    )


async def test_a_text_invitation_carries_the_link_and_nothing_about_health() -> None:
    patient = await make_patient(given="Rosa")
    await Patient.update({Patient.phone: "+15550104444"}).where(Patient.id == patient.id)
    invitation = await invite_create(
        mrn=patient.mrn, via="sms", base_url=BASE, clinic_name="Test Clinic"
    )
    row = (
        await OutboxMessage.select().where(OutboxMessage.idempotency_key == invitation.key).first()
    )
    assert row is not None
    assert row["recipient"] == "+15550104444"
    assert invitation.link in row["body"]
    assert "Rosa" not in row["body"]
    assert patient.family_name not in row["body"]
    assert len(invitation.link.rsplit("/", 1)[1]) >= 32  # 192 random bits


async def test_no_contact_on_record_means_no_invitation_by_that_channel() -> None:
    patient = await make_patient()
    with pytest.raises(ValueError, match="no email contact"):
        await invite_create(mrn=patient.mrn, via="email", base_url=BASE, clinic_name="C")


async def test_the_right_date_enrolls_once_and_makes_an_account_with_a_self_grant() -> None:
    patient = await make_patient(birth=BIRTH)
    token = await _invite(patient.mrn)
    assert await _confirm(token)
    grant = await AccessGrant.select(AccessGrant.kind).where(AccessGrant.patient == patient.id)
    assert grant == [{"kind": "self"}]
    with pytest.raises(EnrollmentError) as used:
        await _confirm(token)
    assert used.value.reason == "expired"


async def test_an_existing_account_is_reused_on_a_new_link() -> None:
    person = await make_person(birth=BIRTH)
    await _confirm(await _invite(person.patient.mrn))
    grants = await AccessGrant.select(AccessGrant.account).where(
        AccessGrant.patient == person.patient.id
    )
    assert grants == [{"account": person.account.id}]


async def test_wrong_dates_are_limited_and_then_the_link_stops_working() -> None:
    patient = await make_patient(birth=BIRTH)
    token = await _invite(patient.mrn)
    for attempt in range(1, MAX_DATE_ATTEMPTS):
        with pytest.raises(EnrollmentError) as wrong:
            await _confirm(token, date(1981, 5, 17))
        assert (wrong.value.reason, wrong.value.attempts_left) == (
            "mismatch",
            MAX_DATE_ATTEMPTS - attempt,
        )
    with pytest.raises(EnrollmentError) as last:
        await _confirm(token, date(1981, 5, 17))
    assert last.value.reason == "expired"
    with pytest.raises(EnrollmentError):
        await _confirm(token)  # even the right date now
    assert not await invite_is_open(token)


async def test_links_expire_after_a_week_and_a_new_link_voids_the_old() -> None:
    patient = await make_patient(birth=BIRTH)
    old = await _invite(patient.mrn)
    new = await _invite(patient.mrn)
    assert not await invite_is_open(old)
    assert await invite_is_open(new)
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    set_clock(lambda: later)
    assert not await invite_is_open(new)
    with pytest.raises(EnrollmentError):
        await _confirm(new)


async def test_an_unknown_token_looks_like_an_expired_one() -> None:
    with pytest.raises(EnrollmentError) as unknown:
        await _confirm("no-such-token")
    assert unknown.value.reason == "expired"


async def _teen(*, phone_is_own: bool = False, email_is_own: bool = False) -> Patient:
    teen = await make_patient(given="Teo", birth=years_ago(15))
    return await with_contacts(
        teen,
        phone="+15550" + unique("")[-6:],
        email=f"{unique('teo')}@mail.test",
        phone_is_own=phone_is_own,
        email_is_own=email_is_own,
    )


@pytest.mark.parametrize("via", ["sms", "email", "print", "qr"])
async def test_a_child_under_the_adolescent_age_gets_no_link_of_their_own(via: str) -> None:
    child = await make_patient(given="Nina", birth=years_ago(7))
    await with_contacts(
        child,
        phone="+15550" + unique("")[-6:],
        email=f"{unique('nina')}@mail.test",
        phone_is_own=True,
        email_is_own=True,
    )
    with pytest.raises(SelfAccessError) as refused:
        await invite_create(mrn=child.mrn, via=via, base_url=BASE, clinic_name="C")
    assert refused.value.reason == "child"
    assert not await EnrollmentInvite.exists().where(EnrollmentInvite.patient == child.id)


async def test_a_teenager_gets_a_link_only_through_a_contact_marked_as_their_own() -> None:
    teen = await _teen(phone_is_own=True)
    with pytest.raises(SelfAccessError) as by_email:
        await invite_create(mrn=teen.mrn, via="email", base_url=BASE, clinic_name="C")
    assert by_email.value.reason == "no_own_contact"
    assert await invite_create(mrn=teen.mrn, via="sms", base_url=BASE, clinic_name="C")
    assert await invite_create(mrn=teen.mrn, via="qr", base_url=BASE, clinic_name="C")
    unmarked = await _teen()
    for via in ("sms", "email", "print", "qr"):
        with pytest.raises(SelfAccessError) as refused:
            await invite_create(mrn=unmarked.mrn, via=via, base_url=BASE, clinic_name="C")
        assert refused.value.reason == "no_own_contact"


async def test_a_contact_a_guardian_uses_never_opens_a_teenagers_own_account() -> None:
    teen = await _teen(phone_is_own=True)
    # The parent's own record has the same phone: a family phone marked by mistake.
    parent = await make_person("Paula")
    await with_contacts(parent.patient, phone=teen.phone)
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    for via in ("sms", "qr"):
        with pytest.raises(SelfAccessError) as refused:
            await invite_create(mrn=teen.mrn, via=via, base_url=BASE, clinic_name="C")
        assert refused.value.reason == "guardian_contact"
    # A guardian with no record here: the email on their account counts the same.
    other = await _teen(email_is_own=True)
    guardian = await make_account("Gus")
    await Account.update({Account.email: other.email}).where(Account.id == guardian.id)
    await grant(guardian, other, kind="proxy", relationship="guardian")
    with pytest.raises(SelfAccessError, match="guardian_contact"):
        await invite_create(mrn=other.mrn, via="email", base_url=BASE, clinic_name="C")


async def test_an_open_link_stops_working_when_the_contact_is_no_longer_theirs() -> None:
    teen = await _teen(phone_is_own=True)
    token = await _invite(teen.mrn, via="sms")
    await Patient.update({Patient.phone_is_own: False}).where(Patient.id == teen.id)
    assert not await invite_is_open(token)
    with pytest.raises(EnrollmentError) as refused:
        await _confirm(token, teen.birth_date)
    assert refused.value.reason == "expired"
    assert not await AccessGrant.exists().where(AccessGrant.patient == teen.id)


async def test_a_teenager_with_their_own_phone_enrolls() -> None:
    teen = await _teen(phone_is_own=True)
    assert await _confirm(await _invite(teen.mrn, via="sms"), teen.birth_date)
    assert await AccessGrant.exists().where(
        AccessGrant.patient == teen.id, AccessGrant.kind == "self"
    )


async def test_wrong_birth_dates_sent_at_once_use_up_the_link_after_five() -> None:
    """Each wrong date is counted in one statement, so dates sent together (at once on
    PostgreSQL) cannot all read the same count: five and the link is gone."""
    patient = await make_patient(birth=BIRTH)
    invitation = await invite_create(mrn=patient.mrn, via="print", base_url="", clinic_name="C")
    token = invitation.link.rsplit("/", 1)[-1]

    async def attempt(birth: date) -> str:
        try:
            await _confirm(token, birth)
        except EnrollmentError as error:
            return error.reason
        return "ok"

    wrong = [BIRTH - timedelta(days=n) for n in range(1, 16)]
    outcomes = await asyncio.gather(*(attempt(birth) for birth in wrong))
    assert outcomes.count("mismatch") == MAX_DATE_ATTEMPTS - 1
    row = (
        await EnrollmentInvite.select(EnrollmentInvite.failed_attempts, EnrollmentInvite.voided_at)
        .where(EnrollmentInvite.patient == patient.id)
        .first()
    )
    assert row is not None
    assert row["failed_attempts"] == MAX_DATE_ATTEMPTS
    assert row["voided_at"] is not None
    assert await attempt(BIRTH) == "expired"
