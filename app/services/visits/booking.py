"""Booking, moving, cancelling and confirming a visit, each audited in its own transaction.

A booking is an insert the database lets succeed once per slot (slots.py); whoever comes
second is told "Just taken" with the next free times. Moving a visit holds the new slot
before it frees the old one, in one transaction, so a failed move changes nothing. Cancelling
online closes a number of hours before the start, per type of visit; then the patient calls.
A freed slot is offered to the waitlist (waitlist.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.access import PatientContext
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.facts import record_fact
from app.services.visits.listing import VisitDetail, visit_detail, visit_row
from app.services.visits.slots import (
    BOOKING_LEAD,
    SlotLine,
    SlotTakenError,
    as_utc,
    slot_for_booking,
    slot_hold,
    slot_line,
    slots_find,
    types_bookable,
)
from app.services.visits.waitlist import offers_gone, waitlist_offer_freed
from app.tables import Appointment, CareRecall, WaitlistEntry

# Why someone cancels, if they say (optional); stored as a code, shown translated.
CANCEL_REASONS = ("feel_better", "cannot_make_it", "booked_elsewhere", "other")
ALTERNATIVES = 5
# Upcoming visits one record may hold through the portal at once: enough for a check-up, a
# follow-up and a test, not enough for one account to empty a clinician's week. More: call.
MAX_UPCOMING_ONLINE = 3


class JustTakenError(Exception):
    """The slot went to someone else (or is no longer offered): here are the next times."""

    def __init__(self, alternatives: list[SlotLine]) -> None:
        super().__init__("slot taken")
        self.alternatives = alternatives


class LateChangeError(Exception):
    """Too close to the visit to cancel or move it online: the patient calls the clinic."""

    def __init__(self, visit: VisitDetail) -> None:
        super().__init__("too late to change online")
        self.visit = visit


class TooManyBookedError(Exception):
    """This record already holds as many upcoming visits booked online as the portal allows."""

    def __init__(self, booked: int) -> None:
        super().__init__("too many upcoming visits booked online")
        self.booked = booked


@dataclass(frozen=True)
class Booked:
    public_id: str


async def _bookable_slot(context: PatientContext, slot_public_id: str) -> dict[str, Any]:
    """The slot, if this patient may book its type online; 404 otherwise."""
    context.require("appointments")
    slot = await slot_for_booking(slot_public_id)
    if slot is None:
        raise NotFoundError(slot_public_id)
    if slot["visit_type"] not in {kind.code for kind in await types_bookable(context)}:
        raise NotFoundError(slot_public_id)
    return slot


async def _just_taken(slot: dict[str, Any]) -> JustTakenError:
    """The next free times of the same kind: the same clinician's first, then anyone's."""
    same = await slots_find(
        type_code=slot["visit_type"],
        clinician=str(slot["clinician_public_id"]),
        excluding=str(slot["public_id"]),
        limit=ALTERNATIVES,
    )
    others = await slots_find(
        type_code=slot["visit_type"], excluding=str(slot["public_id"]), limit=ALTERNATIVES
    )
    seen = {line.public_id for line in same}
    extra = sorted((line for line in others if line.public_id not in seen), key=_start)
    return JustTakenError([*same, *extra][:ALTERNATIVES])


def _start(line: SlotLine) -> Any:
    return line.starts_at


def _offered(slot: dict[str, Any]) -> bool:
    return (
        not slot["blocked"]
        and bool(slot["accepts_online_booking"])
        and as_utc(slot["starts_at"]) >= utcnow() + BOOKING_LEAD
    )


async def _upcoming_online(patient_id: int) -> int:
    booked: int = await Appointment.count().where(
        Appointment.patient == patient_id,
        Appointment.status == "booked",
        Appointment.channel == "portal",
        Appointment.starts_at > utcnow(),
    )
    return booked


async def _within_online_limit(patient_id: int) -> None:
    booked = await _upcoming_online(patient_id)
    if booked >= MAX_UPCOMING_ONLINE:
        raise TooManyBookedError(booked)


async def booking_preview(
    context: PatientContext, slot_public_id: str, *, moving: bool = False
) -> SlotLine:
    """The confirmation screen's slot; "Just taken" already when it is no longer free, and
    TooManyBookedError for a new visit when the record holds as many as the portal allows
    (a move replaces a visit, so it is always allowed)."""
    slot = await _bookable_slot(context, slot_public_id)
    if not moving:
        await _within_online_limit(context.patient.id)
    if not _offered(slot) or not slot["free"]:
        raise await _just_taken(slot)
    return slot_line(slot)


async def appointment_book(
    context: PatientContext, *, slot_public_id: str, channel: str = "portal"
) -> Booked:
    """Book a free slot for the context's patient. Exactly one of any number of concurrent
    bookings of a slot succeeds; the others raise JustTakenError with real alternatives.
    TooManyBookedError when the record already holds MAX_UPCOMING_ONLINE upcoming visits
    booked online (counted under a per-record lock, so parallel requests cannot pass it)."""
    slot = await _bookable_slot(context, slot_public_id)
    if not _offered(slot):
        raise await _just_taken(slot)
    try:
        async with write_transaction():
            await lock_names(f"visits.book:{context.patient.id}")
            await _within_online_limit(context.patient.id)
            # A teenager's own booking is theirs: hidden from guardians, reminders to them alone.
            appointment = await slot_hold(
                patient_id=context.patient.id,
                slot=slot,
                channel=channel,
                confidential=context.is_teenager_on_own_record,
            )
            await _answer_recalls(context.patient.id, slot["type_id"], appointment.id)
            await offers_gone(slot_id=slot["id"])
            await audit_record(
                actor=context.actor,
                context=context,
                action="visits.book",
                resource_type="Appointment",
                resource_id=str(appointment.public_id),
            )
    except SlotTakenError:
        raise await _just_taken(slot) from None
    return Booked(str(appointment.public_id))


async def _answer_recalls(patient_id: int, type_id: int, appointment_id: int) -> None:
    """A follow-up or recheck the care team asked for is answered by a visit of its type."""
    await CareRecall.update({CareRecall.appointment: appointment_id}).where(
        CareRecall.patient == patient_id,
        CareRecall.appointment_type == type_id,
        CareRecall.appointment.is_null(),
    )


async def visit_for_change(context: PatientContext, visit_public_id: str) -> VisitDetail:
    """The change and cancel pages' visit, audited as a look at the record: an upcoming visit
    of this record that may still be changed online, else LateChangeError (with the clinic's
    phone number to call; that page shows the visit too, so the look is audited first)."""
    async with write_transaction():
        visit = await _changeable_or_late(context, visit_public_id)
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.view",
            resource_type="Appointment",
            resource_id=visit_public_id,
        )
    if not visit.may_cancel_online:
        raise LateChangeError(visit)
    return visit


async def _changeable_or_late(context: PatientContext, visit_public_id: str) -> VisitDetail:
    context.require("appointments")
    visit = visit_detail(await visit_row(context, visit_public_id))
    if not visit.is_upcoming:
        raise NotFoundError(visit_public_id)
    return visit


async def _changeable(context: PatientContext, visit_public_id: str) -> None:
    """Before a change: the visit is upcoming and still open to online changes."""
    visit = await _changeable_or_late(context, visit_public_id)
    if not visit.may_cancel_online:
        raise LateChangeError(visit)


async def appointment_reschedule(
    context: PatientContext, *, visit_public_id: str, slot_public_id: str
) -> Booked:
    """Move a visit to another free slot of its type: the new slot is held first, then the
    old visit is cancelled as replaced (and its slot offered to the waitlist), in one
    transaction. When the new slot is taken, nothing changes."""
    await _changeable(context, visit_public_id)
    slot = await _bookable_slot(context, slot_public_id)
    if not _offered(slot):
        raise await _just_taken(slot)
    try:
        async with write_transaction():
            # One change to this record's visits at a time: two moves of one visit at once
            # must not both find it booked (PostgreSQL; SQLite writers already queue).
            await lock_names(f"visits.book:{context.patient.id}")
            old = await visit_row(context, visit_public_id)
            if slot["visit_type"] != old["visit_type"] or old["status"] != "booked":
                raise NotFoundError(slot_public_id)
            new = await slot_hold(
                patient_id=context.patient.id,
                slot=slot,
                channel="portal",
                confidential=bool(old["confidential"]),
            )
            await _replace(old, new.id)
            await offers_gone(slot_id=slot["id"])
            await audit_record(
                actor=context.actor,
                context=context,
                action="visits.reschedule",
                resource_type="Appointment",
                resource_id=f"{visit_public_id}>{new.public_id}",
            )
    except SlotTakenError:
        raise await _just_taken(slot) from None
    return Booked(str(new.public_id))


async def _replace(old: dict[str, Any], new_id: int) -> None:
    """The old visit gives way to the new one (inside the caller's transaction): cancelled as
    rescheduled, its waitlist wish carried over, its slot offered to others."""
    await Appointment.update(
        {
            Appointment.status: "cancelled",
            Appointment.cancelled_at: utcnow(),
            Appointment.cancelled_by: "rescheduled",
            Appointment.replaced_by: new_id,
        }
    ).where(Appointment.id == old["id"])
    await WaitlistEntry.update({WaitlistEntry.appointment: new_id}).where(
        WaitlistEntry.appointment == old["id"], WaitlistEntry.status == "waiting"
    )
    if old["slot"] is not None:
        await waitlist_offer_freed(slot_id=old["slot"])


async def appointment_cancel(
    context: PatientContext, *, visit_public_id: str, reason: str = ""
) -> None:
    """Cancel within the type's policy (LateChangeError after it); the reason is optional."""
    await _changeable(context, visit_public_id)
    async with write_transaction():
        row = await visit_row(context, visit_public_id)
        if row["status"] != "booked":
            raise NotFoundError(visit_public_id)
        await Appointment.update(
            {
                Appointment.status: "cancelled",
                Appointment.cancelled_at: utcnow(),
                Appointment.cancelled_by: "patient",
                Appointment.cancel_reason: reason if reason in CANCEL_REASONS else "",
            }
        ).where(Appointment.id == row["id"])
        await record_fact(
            "visit_cancelled", context.patient.id, row["location_id"], channel="portal"
        )
        await WaitlistEntry.update({WaitlistEntry.status: "left"}).where(
            WaitlistEntry.appointment == row["id"], WaitlistEntry.status == "waiting"
        )
        if row["slot"] is not None:
            await waitlist_offer_freed(slot_id=row["slot"])
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.cancel",
            resource_type="Appointment",
            resource_id=visit_public_id,
        )


async def appointment_confirm(context: PatientContext, *, visit_public_id: str) -> None:
    """ "I'll be there" from a reminder: the clinic's day view shows it at once."""
    context.require("appointments")
    async with write_transaction():
        row = await visit_row(context, visit_public_id)
        if row["status"] != "booked" or as_utc(row["ends_at"]) <= utcnow():
            raise NotFoundError(visit_public_id)
        await Appointment.update({Appointment.confirmed_at: utcnow()}).where(
            Appointment.id == row["id"], Appointment.confirmed_at.is_null()
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.confirm",
            resource_type="Appointment",
            resource_id=visit_public_id,
        )


async def waitlist_join(context: PatientContext, *, visit_public_id: str) -> None:
    """ "Tell me if something earlier opens" on an upcoming visit booked into a slot."""
    context.require("appointments")
    async with write_transaction():
        row = await visit_row(context, visit_public_id)
        if row["status"] != "booked" or row["slot"] is None or as_utc(row["starts_at"]) <= utcnow():
            raise NotFoundError(visit_public_id)
        if not row["on_waitlist"]:
            await WaitlistEntry.insert(
                WaitlistEntry(
                    appointment=row["id"],
                    patient=context.patient.id,
                    account=context.actor.account_id,
                )
            )
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.waitlist_join",
            resource_type="Appointment",
            resource_id=visit_public_id,
        )


async def waitlist_leave(context: PatientContext, *, visit_public_id: str) -> None:
    context.require("appointments")
    async with write_transaction():
        row = await visit_row(context, visit_public_id)
        await WaitlistEntry.update({WaitlistEntry.status: "left"}).where(
            WaitlistEntry.appointment == row["id"], WaitlistEntry.status == "waiting"
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.waitlist_leave",
            resource_type="Appointment",
            resource_id=visit_public_id,
        )
