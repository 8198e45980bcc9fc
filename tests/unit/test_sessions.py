"""Sessions end on idle time, on absolute lifetime, and on sign-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import set_clock
from app.services.sessions import session_actor, session_end, session_start, token_hash
from app.tables import AuditEvent, WebSession
from tests.factories import make_person

IDLE = timedelta(minutes=15)


async def _start(person_account_id: int, patient_id: int) -> str:
    return await session_start(
        account_id=person_account_id,
        acting_patient_id=patient_id,
        lifetime=timedelta(hours=12),
        ip="127.0.0.1",
        user_agent="pytest",
        reason="test",
    )


async def _actor(token: str):  # type: ignore[no-untyped-def]
    return await session_actor(token=token, idle_timeout=IDLE, ip="127.0.0.1", user_agent="pytest")


async def test_the_database_keeps_only_a_hash_of_the_token() -> None:
    person = await make_person()
    token = await _start(person.account.id, person.patient.id)
    assert not await WebSession.exists().where(WebSession.token_hash == token)
    assert await WebSession.exists().where(WebSession.token_hash == token_hash(token))
    assert (await _actor(token)).account_id == person.account.id


async def test_a_session_ends_after_idle_time_and_activity_keeps_it_alive() -> None:
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
    await session_end(actor=actor)
    assert await _actor(token) is None
    actions = await AuditEvent.select(AuditEvent.action).where(
        AuditEvent.actor_account == person.account.id
    )
    assert [row["action"] for row in actions] == ["auth.sign_in.test", "auth.sign_out"]


async def test_an_unknown_token_is_nobody() -> None:
    assert await _actor("not-a-real-token") is None
