"""Audit rows: written inside the caller's transaction, so no access goes unrecorded.

The trail is append-only and hash-chained (docs/security.md), the way a Certificate Transparency log
sequences its entries (RFC 6962): a request only inserts its rows, reading nothing and taking no
lock; a sealer (`audit_seal`, run every second by the worker) then links the rows that wait into
the chain, in batches, one process at a time (a lease on the chain head). Sealing gives each row
its place (`seal_seq`, 1, 2, 3...) and
`row_hash = sha256(previous sealed row's row_hash + canonical JSON of this row's fields)`, so
changing, removing or moving a sealed row breaks the chain at the next `portal audit verify`,
and the chain head (the newest row's place and hash) shows a removed tail.

The database refuses every UPDATE of an audit row but the seal itself (a trigger, see
migrations/): an unsealed row may get its place and hash once, with nothing else changed.
Seals live on the rows rather than in a table of their own so a row and its seal cannot part,
verification reads one table, and the chains hashed before sealing existed keep their hashes.
DELETE stays possible for `seed-demo --reset`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from app.access import Actor, PatientContext, StaffActor
from app.clock import utcnow
from app.db import defer_until_commit, engine, write_transaction
from app.tables import AuditChainHead, AuditEvent

# The pg_advisory_xact_lock key the migration that first chained the rows took ("audit_ch").
AUDIT_CHAIN_LOCK = 0x61756469745F6368
VERIFY_BATCH = 1000
# Rows linked per sealing transaction, and per UPDATE statement within it.
SEAL_BATCH = 500
SEAL_STATEMENT_ROWS = 200
# A sealer that stops renewing its lease (a crash) is replaced after this long.
SEAL_LEASE = timedelta(seconds=15)
HEAD_ID = 1
# This process's name as a sealer, unless the caller gives one.
PROCESS_SEALER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

# The fields under the hash, in the order they are read back for verification.
_HASHED = (
    AuditEvent.occurred_at,
    AuditEvent.actor_account,
    AuditEvent.actor_staff,
    AuditEvent.patient,
    AuditEvent.action,
    AuditEvent.resource_type,
    AuditEvent.resource_id,
    AuditEvent.ip,
    AuditEvent.user_agent,
)


def _utc(moment: datetime) -> datetime:
    # Both engines hand timestamptz values back in UTC; a naive time is taken to be UTC already.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _optional_id(value: Any) -> int | None:
    return None if value is None else int(value)


def audit_row_hash(previous: str, row: Mapping[str, Any]) -> str:
    """The chain hash of one row. Never change this serialisation: every stored hash (and the
    back-fill in the migration that added the chain) depends on it byte for byte."""
    payload = json.dumps(
        {
            "occurred_at": _utc(row["occurred_at"]).isoformat(timespec="microseconds"),
            "actor_account": _optional_id(row["actor_account"]),
            "actor_staff": _optional_id(row["actor_staff"]),
            "patient": _optional_id(row["patient"]),
            "action": row["action"],
            "resource_type": row["resource_type"],
            "resource_id": row["resource_id"],
            "ip": row["ip"],
            "user_agent": row["user_agent"],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256((previous + payload).encode("utf-8")).hexdigest()


async def audit_insert(
    *,
    action: str,
    occurred_at: datetime | None = None,
    actor_account: int | None = None,
    actor_staff: int | None = None,
    patient: int | None = None,
    resource_type: str = "",
    resource_id: str = "",
    ip: str = "",
    user_agent: str = "",
) -> None:
    """Record one audit row (sealed into the chain shortly after); the only way audit rows
    are written."""
    # Cut to the column sizes here, so the hashed text is exactly the stored text.
    fields: dict[str, Any] = {
        "occurred_at": _utc(occurred_at or utcnow()),
        "actor_account": actor_account,
        "actor_staff": actor_staff,
        "patient": patient,
        "action": action[: AuditEvent.action.length],
        "resource_type": resource_type[: AuditEvent.resource_type.length],
        "resource_id": resource_id[: AuditEvent.resource_id.length],
        "ip": ip[: AuditEvent.ip.length],
        "user_agent": user_agent[: AuditEvent.user_agent.length],
    }
    # Joins the caller's transaction (opening one only for a caller that has none); a
    # transaction's rows are written together just before it commits, in one statement.
    async with write_transaction():
        if not defer_until_commit("audit", fields, _insert_rows):
            await _insert_rows([fields])


# The statement Piccolo's AuditEvent.insert() writes, less its per-row Table objects and
# query building (a tenth of a signed-in page's own time): every column given, unsealed.
_INSERTED = (
    "occurred_at",
    "actor_account",
    "actor_staff",
    "patient",
    "action",
    "resource_type",
    "resource_id",
    "ip",
    "user_agent",
)
_INSERT_SQL = (
    "INSERT INTO audit_event (occurred_at, actor_account, actor_staff, patient, action,"
    " resource_type, resource_id, ip, user_agent, seal_seq, row_hash) VALUES {}"
)
_INSERT_ROW = "({}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, '')"


async def _insert_rows(rows: list[dict[str, Any]]) -> None:
    """Insert a transaction's audit rows, unsealed, in the order they were recorded."""
    values = [fields[name] for fields in rows for name in _INSERTED]
    await AuditEvent.raw(_INSERT_SQL.format(", ".join([_INSERT_ROW] * len(rows))), *values)


async def audit_record(
    *,
    actor: Actor,
    action: str,
    context: PatientContext | None = None,
    patient_id: int | None = None,
    resource_type: str = "",
    resource_id: str = "",
) -> None:
    await audit_insert(
        actor_account=actor.account_id,
        patient=context.patient.id if context else patient_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        ip=actor.ip,
        user_agent=actor.user_agent,
    )


async def audit_anonymous(*, action: str, ip: str, user_agent: str, resource_id: str = "") -> None:
    """An authentication event with nobody signed in (a failed sign-in)."""
    await audit_insert(
        action=action,
        resource_type="Passkey" if resource_id else "",
        resource_id=resource_id,
        ip=ip,
        user_agent=user_agent,
    )


async def audit_staff(
    *,
    staff: StaffActor,
    action: str,
    patient_id: int | None = None,
    resource_type: str = "",
    resource_id: str = "",
) -> None:
    """A staff member's action, on a patient's record or not."""
    await audit_insert(
        actor_staff=staff.staff_id,
        patient=patient_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        ip=staff.ip,
        user_agent=staff.user_agent,
    )


_SEAL_SQL = {
    # (id, place, hash) triples joined onto the rows they seal, one statement per chunk.
    "postgres": "UPDATE audit_event SET seal_seq = v.seq, row_hash = v.hash FROM (VALUES {}) "
    "AS v(id, seq, hash) WHERE audit_event.id = v.id",
    "sqlite": "UPDATE audit_event SET seal_seq = v.column2, row_hash = v.column3 FROM "
    "(VALUES {}) AS v WHERE audit_event.id = v.column1",
}
_SEAL_VALUES = {"postgres": "({}::integer, {}::integer, {}::varchar)", "sqlite": "({}, {}, {})"}


async def _store_seals(seals: list[tuple[int, int, str]]) -> None:
    kind = "postgres" if isinstance(engine(), PostgresEngine) else "sqlite"
    for start in range(0, len(seals), SEAL_STATEMENT_ROWS):
        chunk = seals[start : start + SEAL_STATEMENT_ROWS]
        values = ", ".join([_SEAL_VALUES[kind]] * len(chunk))
        await AuditEvent.raw(
            _SEAL_SQL[kind].format(values), *(value for seal in chunk for value in seal)
        )


async def audit_seal(
    *, holder: str = PROCESS_SEALER, batch: int = SEAL_BATCH, lease: timedelta = SEAL_LEASE
) -> int:
    """Link up to `batch` unsealed rows into the chain, oldest id first; the number sealed.

    Nothing happens while another holder's lease runs. Claiming the lease updates the head row
    in the same transaction as the seals, so on PostgreSQL a second sealer waits for that row
    until the first commits and then sees the lease taken; on SQLite the transaction is the
    one writer. Rows get their places in the order sealed: a row whose transaction commits
    late is simply sealed in a later batch. With nothing waiting it writes nothing (an idle
    portal does not write every second); the lease then lapses, and any sealer may take it."""
    if not await AuditEvent.exists().where(AuditEvent.seal_seq.is_null()):
        return 0
    now = utcnow()
    async with write_transaction():
        claimed = (
            await AuditChainHead.update(
                {AuditChainHead.holder: holder, AuditChainHead.lease_until: now + lease}
            )
            .where(
                (AuditChainHead.id == HEAD_ID)
                & (
                    (AuditChainHead.holder == holder)
                    | AuditChainHead.lease_until.is_null()
                    | (AuditChainHead.lease_until < now)
                )
            )
            .returning(AuditChainHead.last_seq, AuditChainHead.last_hash)
        )
        if not claimed:
            return 0
        rows = (
            await AuditEvent.select(AuditEvent.id, *_HASHED)
            .where(AuditEvent.seal_seq.is_null())
            .order_by(AuditEvent.id)
            .limit(batch)
        )
        if not rows:
            return 0
        place, previous = int(claimed[0]["last_seq"]), str(claimed[0]["last_hash"])
        seals = []
        for row in rows:
            place += 1
            previous = audit_row_hash(previous, row)
            seals.append((int(row["id"]), place, previous))
        await _store_seals(seals)
        await AuditChainHead.update(
            {AuditChainHead.last_seq: place, AuditChainHead.last_hash: previous}
        ).where(AuditChainHead.id == HEAD_ID)
    return len(rows)


async def audit_seal_all(*, holder: str = PROCESS_SEALER) -> int:
    """Seal until nothing waits (tests, and `portal audit verify --seal`)."""
    total = 0
    while sealed := await audit_seal(holder=holder):
        total += sealed
    return total


async def audit_seal_release(*, holder: str) -> None:
    """Give the lease up (a sealer that stops), so the next one need not wait it out."""
    await AuditChainHead.update({AuditChainHead.lease_until: None}).where(
        (AuditChainHead.id == HEAD_ID) & (AuditChainHead.holder == holder)
    )


@dataclass(frozen=True)
class AuditBacklog:
    """Rows written but not yet sealed: normally a second's worth."""

    waiting: int
    oldest: datetime | None

    def age(self, now: datetime) -> timedelta:
        if self.oldest is None:
            return timedelta(0)
        return max(timedelta(0), now - _utc(self.oldest))


async def audit_backlog() -> AuditBacklog:
    # Both read the partial index of unsealed rows; the lowest id waits the longest.
    first = (
        await AuditEvent.select(AuditEvent.occurred_at)
        .where(AuditEvent.seal_seq.is_null())
        .order_by(AuditEvent.id)
        .first()
    )
    if first is None:
        return AuditBacklog(0, None)
    waiting = await AuditEvent.count().where(AuditEvent.seal_seq.is_null())
    return AuditBacklog(waiting, first["occurred_at"])


@dataclass(frozen=True)
class AuditVerification:
    rows_checked: int
    # The id of the first sealed row that does not fit the rows before it; None: none found.
    broken_at: int | None
    # Why the chain is broken; empty when it is intact.
    reason: str
    # The newest sealed row's hash: recorded elsewhere, it also reveals rows removed later.
    last_hash: str
    backlog: AuditBacklog

    @property
    def intact(self) -> bool:
        return not self.reason


async def audit_verify(*, batch: int = VERIFY_BATCH) -> AuditVerification:
    """Walk the sealed rows in seal order, a batch at a time, recomputing every row's hash,
    then compare the end of the walk with the chain head."""
    head = (
        await AuditChainHead.select(AuditChainHead.last_seq, AuditChainHead.last_hash)
        .where(AuditChainHead.id == HEAD_ID)
        .first()
    )
    backlog = await audit_backlog()
    if head is None:
        return AuditVerification(0, None, "the chain head is missing", "", backlog)
    # Rows sealed after the head was read are the next run's to check.
    last_seq = int(head["last_seq"])
    previous = ""
    checked = 0
    while True:
        rows = (
            await AuditEvent.select(
                AuditEvent.id, AuditEvent.seal_seq, AuditEvent.row_hash, *_HASHED
            )
            .where((AuditEvent.seal_seq > checked) & (AuditEvent.seal_seq <= last_seq))
            .order_by(AuditEvent.seal_seq)
            .limit(batch)
        )
        for row in rows:
            if row["seal_seq"] != checked + 1:
                reason = (
                    f"sealed row number {checked + 1} is missing "
                    "(it was removed, or the rows were re-numbered)"
                )
                return AuditVerification(checked, int(row["id"]), reason, previous, backlog)
            if row["row_hash"] != audit_row_hash(previous, row):
                reason = (
                    "its hash does not match its contents and the row before it "
                    "(the row was changed or moved, or a row before it was removed or changed)"
                )
                return AuditVerification(checked, int(row["id"]), reason, previous, backlog)
            previous = str(row["row_hash"])
            checked += 1
        if len(rows) < batch:
            break
    if checked != last_seq or previous != head["last_hash"]:
        reason = (
            f"the chain ends at sealed row {checked} but its head records {last_seq} rows: "
            "the newest sealed rows were removed or changed"
        )
        return AuditVerification(checked, None, reason, previous, backlog)
    return AuditVerification(checked, None, "", previous, backlog)
