"""A visit confirmed ("C") or cancelled ("X") by a text to the clinic's number.

The number stands for the records it may speak for (app/services/outreach/texts.py). The
answer applies only when those records have exactly one upcoming booked visit: with none or
several, nothing changes and the person is asked to use the portal or call. Confidential
visits are never changed by text (a family phone often sits on a teenager's record).
Cancelling keeps the visit type's online policy, frees the slot to the waitlist and is
audited like a cancellation in the portal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.services.audit import audit_insert
from app.services.visits.slots import as_utc
from app.services.visits.waitlist import waitlist_offer_freed
from app.tables import Appointment, AppointmentType, WaitlistEntry

CONFIRMED = "confirmed"
CANCELLED = "cancelled"
NOT_ONE = "not_one"  # no upcoming visit, or several: which one is meant is unclear
TOO_LATE = "too_late"  # past the type's online cancelling window: call the clinic


async def _upcoming(patient_ids: list[int]) -> list[dict[str, Any]]:
    return list(
        await Appointment.select(
            Appointment.id,
            Appointment.public_id,
            Appointment.patient,
            Appointment.slot,
            Appointment.starts_at,
            Appointment.visit_type,
        ).where(
            Appointment.patient.is_in(patient_ids),
            Appointment.status == "booked",
            Appointment.confidential.eq(False),
            Appointment.starts_at > utcnow(),
        )
    )


async def visit_answer_by_text(
    *, patient_ids: list[int], answer: str, account_id: int | None = None
) -> str:
    """Apply "confirm" or "cancel" to the one upcoming visit of these records; the outcome
    (CONFIRMED, CANCELLED, NOT_ONE or TOO_LATE)."""
    if answer not in ("confirm", "cancel"):
        raise ValueError(answer)
    if not patient_ids:
        return NOT_ONE
    async with write_transaction():
        # One change to a record's visits at a time, as in the portal (a move in another tab).
        await lock_names(*(f"visits.book:{patient_id}" for patient_id in sorted(patient_ids)))
        visits = await _upcoming(patient_ids)
        if len(visits) != 1:
            return NOT_ONE
        visit = visits[0]
        now = utcnow()
        if answer == "confirm":
            await Appointment.update({Appointment.confirmed_at: now}).where(
                Appointment.id == visit["id"], Appointment.confirmed_at.is_null()
            )
        else:
            kind = (
                await AppointmentType.select(AppointmentType.cancel_hours)
                .where(AppointmentType.code == visit["visit_type"])
                .first()
            )
            hours = kind["cancel_hours"] if kind else 24
            if as_utc(visit["starts_at"]) - now < timedelta(hours=hours):
                return TOO_LATE
            await Appointment.update(
                {
                    Appointment.status: "cancelled",
                    Appointment.cancelled_at: now,
                    Appointment.cancelled_by: "patient",
                }
            ).where(Appointment.id == visit["id"], Appointment.status == "booked")
            await WaitlistEntry.update({WaitlistEntry.status: "left"}).where(
                WaitlistEntry.appointment == visit["id"], WaitlistEntry.status == "waiting"
            )
            if visit["slot"] is not None:
                await waitlist_offer_freed(slot_id=visit["slot"])
        await audit_insert(
            actor_account=account_id,
            patient=visit["patient"],
            action=f"visits.{answer}.sms",
            resource_type="Appointment",
            resource_id=str(visit["public_id"]),
            user_agent="sms",
        )
    return CONFIRMED if answer == "confirm" else CANCELLED
