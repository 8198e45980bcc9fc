"""Access history: who, other than the patient, has looked at or changed their record.

Read from the audit trail, grouped by person and day, so a patient can see clinic staff
(name and role) and caregivers alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from app.access import PatientContext
from app.clinic import clinic_profile
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotPermittedError
from app.services.audit import audit_record
from app.tables import AuditEvent

HISTORY_DAYS = 365
MAX_ROWS = 5000


@dataclass(frozen=True)
class AccessLine:
    day: date
    name: str
    staff_role: str | None  # None for a caregiver
    kinds: tuple[str, ...]  # viewed | shared | invited | used


def _kind(action: str) -> str:
    if action.startswith("sharing."):
        return "shared"
    if action.startswith("enrollment.invite"):
        return "invited"
    if action.endswith((".view", ".list", "_view", "_search")) or action.startswith(
        ("results.", "home.", "record.")
    ):
        return "viewed"
    return "used"


async def access_history(context: PatientContext) -> list[AccessLine]:
    """The last year, newest first. Only the patient themself may look."""
    if not context.is_self:
        raise NotPermittedError("access history")
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    rows = await AuditEvent.raw(
        f"""
        SELECT e.occurred_at, e.action, e.actor_staff, e.actor_account,
               u.given_name, u.family_name, u.role, a.display_name
        FROM audit_event e
        LEFT JOIN staff_user u ON u.id = e.actor_staff
        LEFT JOIN account a ON a.id = e.actor_account
        WHERE e.patient = {{}} AND e.occurred_at > {{}}
          AND (e.actor_staff IS NOT NULL
               OR (e.actor_account IS NOT NULL AND e.actor_account <> {{}}))
        ORDER BY e.occurred_at DESC
        LIMIT {MAX_ROWS}
        """,  # noqa: S608  (only the constant limit is formatted in)
        context.patient.id,
        since,
        context.actor.account_id,
    )
    zone = clinic_profile().timezone
    grouped: dict[tuple[date, str, int], AccessLine] = {}
    for row in rows:
        day = row["occurred_at"].astimezone(zone).date()
        if row["actor_staff"] is not None:
            key = (day, "staff", row["actor_staff"])
            name = f"{row['given_name']} {row['family_name']}"
            role: str | None = row["role"]
        else:
            key = (day, "account", row["actor_account"])
            name, role = row["display_name"], None
        kind = _kind(row["action"])
        line = grouped.get(key)
        kinds = (line.kinds if line else ()) + (
            (kind,) if not line or kind not in line.kinds else ()
        )
        grouped[key] = AccessLine(day=day, name=name, staff_role=role, kinds=kinds)
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="access_history.view")
    return list(grouped.values())
