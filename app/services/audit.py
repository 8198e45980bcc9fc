"""Audit rows: written inside the caller's transaction, so no access goes unrecorded.

The trail is append-only and hash-chained (SECURITY.md): every row stores
`row_hash = sha256(previous row's row_hash + canonical JSON of this row's fields)`, so changing
or removing a row breaks the chain at the next `portal audit verify`. The database refuses
UPDATE of audit rows (a trigger, see migrations/); DELETE stays possible for `seed-demo --reset`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from app.db import defer_until_commit, engine, write_transaction
from app.services.access import Actor, PatientContext, StaffActor
from app.services.clock import utcnow
from app.tables import AuditEvent

# pg_advisory_xact_lock key taken by every audit writer ("audit_ch" in ASCII): the chain is
# read and extended by one transaction at a time, so two writers never fork it.
AUDIT_CHAIN_LOCK = 0x61756469745F6368
VERIFY_BATCH = 1000

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
    """Append one audit row to the chain; the only way audit rows are written."""
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
    # Joins the caller's transaction (opening one only for a caller that has none), and is
    # written just before it commits.
    async with write_transaction():
        if not defer_until_commit("audit", fields, _append_to_chain):
            await _append_to_chain([fields])


async def _append_to_chain(rows: list[dict[str, Any]]) -> None:
    """Chain and insert a transaction's audit rows, in the order they were recorded."""
    if isinstance(engine(), PostgresEngine):
        # Held until the transaction commits: the next writer then reads these rows as the
        # last. A statement of its own, so the read below gets a snapshot taken after it.
        await AuditEvent.raw("SELECT pg_advisory_xact_lock({})", AUDIT_CHAIN_LOCK)
    # SQLite needs no lock: write_transaction is BEGIN IMMEDIATE, one writer at a time.
    last = (
        await AuditEvent.select(AuditEvent.row_hash)
        .order_by(AuditEvent.id, ascending=False)
        .first()
    )
    previous = str(last["row_hash"]) if last else ""
    chained = []
    for fields in rows:
        previous = audit_row_hash(previous, fields)
        chained.append(AuditEvent(**fields, row_hash=previous))
    await AuditEvent.insert(*chained)


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


@dataclass(frozen=True)
class AuditVerification:
    rows_checked: int
    # The id of the first row whose hash does not follow from the rows before it; None: intact.
    broken_at: int | None
    reason: str
    # The newest row's hash: recorded elsewhere, it also reveals rows removed from the end.
    last_hash: str

    @property
    def intact(self) -> bool:
        return self.broken_at is None


async def audit_verify(*, batch: int = VERIFY_BATCH) -> AuditVerification:
    """Walk the trail in id order, a batch at a time, recomputing every row's hash."""
    previous = ""
    checked = 0
    after = 0
    while True:
        rows = (
            await AuditEvent.select(AuditEvent.id, AuditEvent.row_hash, *_HASHED)
            .where(AuditEvent.id > after)
            .order_by(AuditEvent.id)
            .limit(batch)
        )
        for row in rows:
            stored = row["row_hash"]
            if stored != audit_row_hash(previous, row):
                reason = (
                    "the row has no hash (written around the audit service)"
                    if not stored
                    else "its hash does not match its contents and the row before it "
                    "(the row was changed, or a row before it was removed or changed)"
                )
                return AuditVerification(checked, int(row["id"]), reason, previous)
            previous = str(stored)
            checked += 1
        if len(rows) < batch:
            return AuditVerification(checked, None, "", previous)
        after = int(rows[-1]["id"])
