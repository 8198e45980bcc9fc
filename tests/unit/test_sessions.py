"""Sessions end on idle time, on absolute lifetime, and on sign-out, for patients and staff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import set_clock
from app.services.identity import PATIENTS, STAFF
from app.services.sessions import (
    session_end,
    session_principal,
    sessions_end_all,
    staff_session_start,
    token_hash,
)
from app.settings import get_settings
from app.tables import AuditEvent, StaffUser, WebSession
from tests.factories import make_person, start_session, unique

LIFETIME = timedelta(hours=12)


async def _start(person_account_id: int, patient_id: int) -> str:
    return await start_session(person_account_id, patient_id, lifetime=LIFETIME)


async def _actor(token: str):  # type: ignore[no-untyped-def]
    return await session_principal(PATIENTS, token=token, ip="127.0.0.1", user_agent="pytest")


async def test_the_database_keeps_only_a_hash_of_the_token() -> None:
    person = await make_person()
    token = await _start(person.account.id, person.patient.id)
    assert not await WebSession.exists().where(WebSession.token_hash == token)
    assert await WebSession.exists().where(WebSession.token_hash == token_hash(token))
    assert (await _actor(token)).account_id == person.account.id


async def test_a_session_ends_after_idle_time_and_activity_keeps_it_alive() -> None:
    assert get_settings().session_idle_minutes == 15
    person = await make_person()
    start = datetime.now(UTC)
    set_clock(lambda: start)
    token = await _start(person.account.id, person.patient.id)
    set_clock(lambda: start + timedelta(minutes=10))
    assert await _actor(token) is not None  # activity moves last_seen forward
    set_clock(lambda: start + timedelta(minutes=24))
    assert await _actor(token) is not None
    set_clock(lambda: start + timedelta(minutes=40))
    assert await _actor(token) is None


async def test_a_session_ends_at_its_absolute_lifetime_even_when_active() -> None:
    person = await make_person()
    start = datetime.now(UTC)
    set_clock(lambda: start)
    token = await _start(person.account.id, person.patient.id)
    moment = start
    while moment < start + timedelta(hours=11, minutes=50):
        moment += timedelta(minutes=10)
        set_clock(lambda moment=moment: moment)
        assert await _actor(token) is not None
    set_clock(lambda: start + timedelta(hours=12, minutes=1))
    assert await _actor(token) is None


async def test_signing_out_ends_the_session_and_is_audited() -> None:
    person = await make_person()
    token = await _start(person.account.id, person.patient.id)
    actor = await _actor(token)
    assert actor is not None
    await session_end(PATIENTS, principal=actor)
    assert await _actor(token) is None
    actions = await AuditEvent.select(AuditEvent.action).where(
        AuditEvent.actor_account == person.account.id
    )
    assert [row["action"] for row in actions] == ["auth.sign_in.test", "auth.sign_out"]


async def test_an_unknown_token_is_nobody() -> None:
    assert await _actor("not-a-real-token") is None


async def _staff_session(staff_id: int | None = None) -> tuple[int, str]:
    """A session for this staff member, or for a new one."""
    if staff_id is None:
        staff = StaffUser(
            given_name="Sam", family_name=unique("S"), email=f"{unique('s')}@c.test", role="nurse"
        )
        await StaffUser.insert(staff)
        staff_id = staff.id
    token = await staff_session_start(
        staff_id=staff_id, lifetime=LIFETIME, ip="127.0.0.1", user_agent="pytest", reason="test"
    )
    return staff_id, token


async def _staff(token: str):  # type: ignore[no-untyped-def]
    return await session_principal(STAFF, token=token, ip="127.0.0.1", user_agent="pytest")


async def test_a_staff_session_is_nobody_to_the_patients_realm_and_the_other_way_round() -> None:
    person = await make_person()
    staff_id, staff_token = await _staff_session()
    patient_token = await _start(person.account.id, person.patient.id)
    assert (await _staff(staff_token)).staff_id == staff_id
    assert await _actor(staff_token) is None
    assert await _staff(patient_token) is None


async def test_a_staff_session_ends_after_the_staff_idle_time() -> None:
    idle = timedelta(minutes=get_settings().staff_session_idle_minutes)
    start = datetime.now(UTC)
    set_clock(lambda: start)
    _, token = await _staff_session()
    set_clock(lambda: start + idle - timedelta(seconds=1))
    assert await _staff(token) is not None
    set_clock(lambda: start + 2 * idle - timedelta(seconds=2))
    assert await _staff(token) is not None  # the last request kept it alive
    set_clock(lambda: start + 3 * idle)
    assert await _staff(token) is None


async def test_signing_out_everywhere_ends_every_session_of_that_staff_member_only() -> None:
    staff_id, here = await _staff_session()
    _, someone_else = await _staff_session()
    _, there = await _staff_session(staff_id)
    staff = await _staff(here)
    assert staff is not None
    await sessions_end_all(STAFF, principal=staff)
    assert await _staff(here) is None
    assert await _staff(there) is None
    assert await _staff(someone_else) is not None
    actions = await AuditEvent.select(AuditEvent.action).where(AuditEvent.actor_staff == staff_id)
    assert [row["action"] for row in actions] == [
        "auth.staff_sign_in.test",
        "auth.staff_sign_in.test",
        "auth.staff_sign_out_everywhere",
    ]
