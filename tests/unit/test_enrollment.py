"""Enrollment links work once, for a week, for the right date of birth, and say little."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.services.clock import set_clock
from app.services.enrollment import (
    MAX_DATE_ATTEMPTS,
    EnrollmentError,
    enroll_confirm,
    invite_create,
    invite_is_open,
)
from app.tables import AccessGrant, OutboxMessage
from tests.factories import make_patient, make_person

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
    from app.tables import Patient

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
