"""The audit trail is append-only and hash-chained: a changed, removed or moved row is found.

Requests only insert their rows; the sealer links them into the chain afterwards, so tests
that check the chain seal first (`audit_seal_all`).

The test database is shared by the whole run, so every test that breaks the chain mends it
before it ends (the next test, or `portal audit verify` in another one, checks all rows).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from piccolo.engine.postgres import PostgresEngine

from app.access import StaffActor
from app.clock import set_clock, utcnow
from app.db import engine, write_transaction
from app.services import audit
from app.services.audit import (
    SEAL_LEASE,
    audit_anonymous,
    audit_backlog,
    audit_insert,
    audit_record,
    audit_row_hash,
    audit_seal,
    audit_seal_all,
    audit_seal_release,
    audit_staff,
    audit_verify,
)
from app.tables import AuditChainHead, AuditEvent, StaffUser
from tests.factories import actor_for, make_person, unique

ROOT = Path(__file__).resolve().parents[2]
GUARD = "audit_event_append_only"


async def _write(count: int, *, seal: bool = True) -> list[int]:
    """Rows of our own, newest last, sealed unless told; their ids."""
    action = unique("test.chain.")
    for number in range(count):
        async with write_transaction():
            await audit_anonymous(action=action, ip=f"10.0.0.{number}", user_agent="pytest")
    if seal:
        await audit_seal_all()
    rows = await AuditEvent.select(AuditEvent.id).where(AuditEvent.action == action)
    return sorted(row["id"] for row in rows)


async def _sealed() -> int:
    return await AuditEvent.count().where(AuditEvent.seal_seq.is_not_null())


@asynccontextmanager
async def _guard_lifted() -> AsyncIterator[None]:
    """Inside one transaction, the UPDATE trigger is off: what someone with the database
    password could do. It is back on when the block commits."""
    async with write_transaction():
        if isinstance(engine(), PostgresEngine):
            await AuditEvent.raw(f"ALTER TABLE audit_event DISABLE TRIGGER {GUARD}")
            yield
            await AuditEvent.raw(f"ALTER TABLE audit_event ENABLE TRIGGER {GUARD}")
        else:
            found = await AuditEvent.raw(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = {}", GUARD
            )
            await AuditEvent.raw(f"DROP TRIGGER {GUARD}")
            yield
            await AuditEvent.raw(found[0]["sql"])


async def _set_ip(row_id: int, ip: str) -> None:
    async with _guard_lifted():
        await AuditEvent.update({AuditEvent.ip: ip}).where(AuditEvent.id == row_id)


@asynccontextmanager
async def _tampered(row_id: int) -> AsyncIterator[None]:
    """The row's address changed behind the service's back, then put back."""
    original = await AuditEvent.select(AuditEvent.ip).where(AuditEvent.id == row_id).first()
    assert original is not None
    await _set_ip(row_id, "203.0.113.66")
    try:
        yield
    finally:
        await _set_ip(row_id, original["ip"])


async def test_every_kind_of_audit_row_joins_one_chain_that_verifies() -> None:
    person = await make_person()
    staff = StaffUser(given_name="Chain", family_name="Tester", email=unique("chain") + "@x.org")
    await StaffUser.insert(staff)
    staff_actor = StaffActor(
        staff_id=staff.id,
        public_id=staff.public_id,
        given_name="Chain",
        family_name="Tester",
        role="front_desk",
        session_id=0,
        ip="127.0.0.1",
        user_agent="pytest",
    )
    # Any time zone in, UTC under the hash: the database hands times back in UTC.
    set_clock(lambda: datetime.now(timezone(timedelta(hours=-5))))
    async with write_transaction():
        await audit_record(actor=actor_for(person.account), action="test.chain.record")
        await audit_staff(
            staff=staff_actor, action="test.chain.staff", patient_id=person.patient.id
        )
        await audit_anonymous(action="test.chain.anonymous", ip="x" * 100, user_agent="é" * 400)
    # A caller without a transaction gets one of its own.
    await audit_insert(action="test.chain.alone", resource_id="r" * 60)
    assert await AuditEvent.count().where(AuditEvent.row_hash == "") >= 4  # not yet sealed

    await audit_seal_all()
    result = await audit_verify(batch=7)  # several batches, one probably partial
    assert result.intact, result
    assert result.rows_checked == await AuditEvent.count()
    assert result.backlog.waiting == 0
    newest = (
        await AuditEvent.select().order_by(AuditEvent.seal_seq, ascending=False).limit(5).run()
    )[::-1]
    assert result.last_hash == newest[-1]["row_hash"]
    for before, row in itertools.pairwise(newest):
        assert row["seal_seq"] == before["seal_seq"] + 1
        assert row["row_hash"] == audit_row_hash(before["row_hash"], row)
    anonymous = newest[-2]
    assert anonymous["ip"] == "x" * 64  # cut to the column before hashing, so it verifies
    assert anonymous["user_agent"] == "é" * 300
    assert newest[-1]["resource_id"] == "r" * 40


def test_the_hash_depends_on_every_field_and_the_previous_row() -> None:
    row: dict[str, Any] = {
        "occurred_at": datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        "actor_account": 1,
        "actor_staff": None,
        "patient": 2,
        "action": "home.view",
        "resource_type": "",
        "resource_id": "",
        "ip": "127.0.0.1",
        "user_agent": "pytest",
    }
    base = audit_row_hash("", row)
    assert audit_row_hash("0" * 64, row) != base
    for field, other in {
        "occurred_at": datetime(2026, 11, 23, 9, 30, 0, 1, tzinfo=UTC),
        "actor_account": None,
        "actor_staff": 1,
        "patient": 3,
        "action": "home.View",
        "resource_type": "x",
        "resource_id": "x",
        "ip": "127.0.0.2",
        "user_agent": "pytest ",
    }.items():
        assert audit_row_hash("", {**row, field: other}) != base, field
    # The same moment in another zone is the same row.
    same = {
        **row,
        "occurred_at": datetime(2026, 11, 23, 4, 30, tzinfo=timezone(-timedelta(hours=5))),
    }
    assert audit_row_hash("", same) == base


async def test_the_database_refuses_to_change_an_audit_row() -> None:
    [row_id] = await _write(1)
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.update({AuditEvent.ip: "203.0.113.66"}).where(AuditEvent.id == row_id)
    with pytest.raises(Exception, match="append-only"):
        async with write_transaction():
            await AuditEvent.raw("UPDATE audit_event SET action = 'x' WHERE id = {}", row_id)
    with pytest.raises(Exception, match="append-only"):  # sealed once, never again
        await AuditEvent.update({AuditEvent.row_hash: "f" * 64}).where(AuditEvent.id == row_id)
    row = await AuditEvent.select(AuditEvent.ip).where(AuditEvent.id == row_id).first()
    assert row == {"ip": "10.0.0.0"}
    assert (await audit_verify()).intact


async def test_the_only_change_the_database_allows_is_the_seal_of_an_unsealed_row() -> None:
    [row_id] = await _write(1, seal=False)
    seal = {AuditEvent.seal_seq: 10**9, AuditEvent.row_hash: "a" * 64}
    for refused in (
        {AuditEvent.ip: "203.0.113.66"},
        {**seal, AuditEvent.ip: "203.0.113.66"},  # a seal that also changes the row
        {AuditEvent.row_hash: "a" * 64},  # a hash without a place
        {AuditEvent.seal_seq: 10**9},  # a place without a hash
    ):
        with pytest.raises(Exception, match="append-only"):
            await AuditEvent.update(refused).where(AuditEvent.id == row_id)
    assert await audit_seal_all() >= 1
    row = await AuditEvent.select(AuditEvent.seal_seq).where(AuditEvent.id == row_id).first()
    assert row is not None
    assert row["seal_seq"] is not None
    assert (await audit_verify()).intact


async def test_a_changed_row_breaks_the_chain_at_that_row() -> None:
    _, middle, _ = await _write(3)
    async with _tampered(middle):
        result = await audit_verify()
        assert result.broken_at == middle
        assert "changed" in result.reason
        assert result.rows_checked == await AuditEvent.count().where(
            AuditEvent.seal_seq.is_not_null() & (AuditEvent.id < middle)
        )
    assert (await audit_verify()).intact


async def test_a_removed_row_breaks_the_chain_at_the_next_one() -> None:
    _, middle, last = await _write(3)
    removed = await AuditEvent.select().where(AuditEvent.id == middle).first()
    assert removed is not None
    await AuditEvent.delete().where(AuditEvent.id == middle)
    try:
        result = await audit_verify()
        assert result.broken_at == last
        assert "removed" in result.reason
    finally:
        # Inserting is allowed: put the very row back, id and hash included.
        await AuditEvent.insert(AuditEvent(**removed))
    assert (await audit_verify()).intact


async def test_a_removed_newest_row_is_found_against_the_chain_head() -> None:
    [last] = await _write(1)
    removed = await AuditEvent.select().where(AuditEvent.id == last).first()
    assert removed is not None
    await AuditEvent.delete().where(AuditEvent.id == last)
    try:
        result = await audit_verify()
        assert not result.intact
        assert result.broken_at is None
        assert "removed" in result.reason
    finally:
        await AuditEvent.insert(AuditEvent(**removed))
    assert (await audit_verify()).intact


async def _set_place(row_id: int, place: int) -> None:
    async with _guard_lifted():
        await AuditEvent.update({AuditEvent.seal_seq: place}).where(AuditEvent.id == row_id)


async def test_re_ordered_rows_break_the_chain() -> None:
    first, second = await _write(2)
    places = {
        row["id"]: row["seal_seq"]
        for row in await AuditEvent.select(AuditEvent.id, AuditEvent.seal_seq).where(
            AuditEvent.id.is_in([first, second])
        )
    }
    # Swap the two rows' places (through a free number: places are unique).
    await _set_place(first, -1)
    await _set_place(second, places[first])
    await _set_place(first, places[second])
    try:
        result = await audit_verify()
        assert result.broken_at == second
        assert "moved" in result.reason
    finally:
        await _set_place(first, -1)
        await _set_place(second, places[second])
        await _set_place(first, places[first])
    assert (await audit_verify()).intact


async def test_rows_of_concurrent_transactions_are_all_sealed_exactly_once() -> None:
    action = unique("test.concurrent.")

    async def visit(number: int) -> None:
        async with write_transaction():
            await audit_anonymous(action=action, ip=f"10.1.0.{number}", user_agent="pytest")
            # Hold the transaction open a moment, as a page that reads after auditing does.
            await asyncio.sleep(0.005)
            await audit_anonymous(action=action, ip=f"10.2.0.{number}", user_agent="pytest")

    async def seal_meanwhile(holder: str) -> None:
        for _ in range(6):
            await audit_seal(holder=holder, batch=3)
            await asyncio.sleep(0.002)

    await asyncio.gather(
        *(visit(number) for number in range(12)),
        # Two sealers of one holder race each other; a second holder waits for the lease.
        seal_meanwhile(audit.PROCESS_SEALER),
        seal_meanwhile(audit.PROCESS_SEALER),
        seal_meanwhile("another-worker"),
    )
    await audit_seal_all()
    rows = await AuditEvent.select(AuditEvent.seal_seq).where(AuditEvent.action == action)
    places = [row["seal_seq"] for row in rows]
    assert len(places) == 24
    assert None not in places
    assert len(set(places)) == 24
    result = await audit_verify()
    assert result.intact, result
    assert result.rows_checked == await AuditEvent.count()


async def test_a_sealer_that_fails_halfway_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await _write(3, seal=False)
    head = await AuditChainHead.select().first()
    original = audit._store_seals

    async def crash_after_storing(seals: list[tuple[int, int, str]]) -> None:
        await original(seals)
        raise RuntimeError("the sealer's process died")

    monkeypatch.setattr(audit, "_store_seals", crash_after_storing)
    with pytest.raises(RuntimeError):
        await audit_seal()
    monkeypatch.undo()
    # Nothing of the failed round is left: the rows wait, unsealed, and the head is unchanged.
    waiting = await AuditEvent.select(AuditEvent.seal_seq).where(AuditEvent.id.is_in(ids))
    assert [row["seal_seq"] for row in waiting] == [None, None, None]
    assert await AuditChainHead.select().first() == head
    assert (await audit_backlog()).waiting >= 3
    await audit_seal_all()
    assert (await audit_verify()).intact
    assert (await audit_backlog()).waiting == 0


async def test_a_sealer_that_stopped_renewing_its_lease_is_replaced() -> None:
    await audit_seal_release(holder=audit.PROCESS_SEALER)
    await _write(1, seal=False)
    # Takes the lease with a round of sealing, then is never heard of again.
    assert await audit_seal(holder="crashed-worker") >= 1
    [row_id] = await _write(1, seal=False)
    assert await audit_seal() == 0  # the lease still runs
    later = utcnow() + SEAL_LEASE + timedelta(seconds=1)
    set_clock(lambda: later)
    assert await audit_seal(holder="next-worker") >= 1
    assert await AuditEvent.exists().where(
        (AuditEvent.id == row_id) & AuditEvent.seal_seq.is_not_null()
    )
    set_clock(None)
    await audit_seal_release(holder="next-worker")
    assert (await audit_verify()).intact


async def test_an_audit_row_that_rolls_back_leaves_the_chain_whole() -> None:
    action = unique("test.rollback.")

    async def fails() -> None:
        async with write_transaction():
            await audit_anonymous(action=action, ip="", user_agent="")
            raise RuntimeError("the work after the audit row failed")

    with pytest.raises(RuntimeError):
        await fails()
    await _write(1)
    assert not await AuditEvent.exists().where(AuditEvent.action == action)
    assert (await audit_verify()).intact


async def _portal(*args: str) -> tuple[int, str, str]:
    """The `portal` command in its own process, on this run's database."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_reports_an_intact_trail() -> None:
    await _write(2)
    status, out, err = await _portal("audit", "verify")
    assert status == 0, err
    newest = (
        await AuditEvent.select(AuditEvent.row_hash)
        .order_by(AuditEvent.seal_seq, ascending=False)
        .first()
    )
    assert newest is not None
    assert f"Audit trail intact: {await _sealed()} sealed rows checked." in out
    assert newest["row_hash"] in out


async def test_the_command_reports_rows_waiting_to_be_sealed() -> None:
    await _write(1)
    await _write(2, seal=False)
    status, out, err = await _portal("audit", "verify")
    assert status == 0, err
    assert "Waiting to be sealed: 2, the oldest for" in out
    await audit_seal_all()


async def test_the_command_fails_at_a_changed_row() -> None:
    _, middle, _ = await _write(3)
    async with _tampered(middle):
        status, out, err = await _portal("audit", "verify")
    assert status == 1, out
    assert f"Audit trail broken at row {middle}:" in err
    status, _, err = await _portal("audit", "verify")
    assert status == 0, err


async def test_a_sealer_with_nothing_to_seal_writes_nothing() -> None:
    await audit_seal_all()
    await audit_seal_release(holder=audit.PROCESS_SEALER)  # the lease is free to take
    head = await AuditChainHead.select().first()
    assert await audit_seal(holder="idle-worker") == 0
    assert await AuditChainHead.select().first() == head  # not even its lease


async def test_each_field_of_an_audit_row_is_stored_in_its_own_column() -> None:
    # The rows are written by a hand-written INSERT: every field must land where it belongs,
    # unsealed, in the order recorded, however many rows a transaction writes.
    person = await make_person()
    action = unique("test.fields.")
    moment = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    async with write_transaction():
        for number in (1, 2):
            await audit_insert(
                action=f"{action}{number}",
                occurred_at=moment + timedelta(seconds=number),
                actor_account=person.account.id,
                patient=person.patient.id,
                resource_type=f"Type{number}",
                resource_id=f"id{number}",
                ip=f"10.9.0.{number}",
                user_agent=f"agent {number}",
            )
    rows = (
        await AuditEvent.select()
        .where(AuditEvent.action.like(f"{action}%"))
        .order_by(AuditEvent.id)
        .run()
    )
    assert [
        (
            row["action"],
            row["occurred_at"].astimezone(UTC),
            row["actor_account"],
            row["actor_staff"],
            row["patient"],
            row["resource_type"],
            row["resource_id"],
            row["ip"],
            row["user_agent"],
            row["seal_seq"],
            row["row_hash"],
        )
        for row in rows
    ] == [
        (
            f"{action}{number}",
            moment + timedelta(seconds=number),
            person.account.id,
            None,
            person.patient.id,
            f"Type{number}",
            f"id{number}",
            f"10.9.0.{number}",
            f"agent {number}",
            None,
            "",
        )
        for number in (1, 2)
    ]
