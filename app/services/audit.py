"""Audit rows: written inside the caller's transaction, so no access goes unrecorded."""

from __future__ import annotations

from app.services.access import Actor, PatientContext, StaffActor
from app.services.clock import utcnow
from app.tables import AuditEvent


async def audit_record(
    *,
    actor: Actor,
    action: str,
    context: PatientContext | None = None,
    patient_id: int | None = None,
    resource_type: str = "",
    resource_id: str = "",
) -> None:
    await AuditEvent.insert(
        AuditEvent(
            occurred_at=utcnow(),
            actor_account=actor.account_id,
            patient=context.patient.id if context else patient_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            ip=actor.ip[:64],
            user_agent=actor.user_agent[:300],
        )
    )


async def audit_anonymous(*, action: str, ip: str, user_agent: str, resource_id: str = "") -> None:
    """An authentication event with nobody signed in (a failed sign-in)."""
    await AuditEvent.insert(
        AuditEvent(
            occurred_at=utcnow(),
            action=action,
            resource_type="Passkey" if resource_id else "",
            resource_id=resource_id[:40],
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
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
    await AuditEvent.insert(
        AuditEvent(
            occurred_at=utcnow(),
            actor_staff=staff.staff_id,
            patient=patient_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id[:40],
            ip=staff.ip[:64],
            user_agent=staff.user_agent[:300],
        )
    )
