"""The waitlist (Fast Pass): when a slot frees, it is offered to the visits waiting for
something earlier, oldest wish first, a few at a time, through the notification path. Each
offer's link carries a random token (kept only as a hash; nothing about the visit is in it).
The first to accept gets the slot (the booking index decides); the others are told it is
gone. An offer expires after OFFER_TTL, and the next waiting visits get theirs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.access import PatientContext
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.notices import send_waitlist_offer, send_waitlist_offer_gone
from app.services.audit import audit_record
from app.services.visits.slots import (
    BOOKING_LEAD,
    SlotLine,
    SlotTakenError,
    as_utc,
    slot_for_booking,
    slot_hold,
    slot_line,
)
from app.settings import get_settings
from app.tables import Appointment, Slot, WaitlistEntry, WaitlistOffer

# How many waiting visits hear of one freed slot at once, and for how long.
OFFER_BATCH = 3
OFFER_TTL = timedelta(hours=2)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer_path(token: str) -> str:
    return f"/visits/offers/{token}"


async def waitlist_offer_freed(*, slot_id: int) -> int:
    """Offer a freed slot to the next waiting visits (inside the caller's transaction):
    same type and location, booked later than the slot, oldest wish first, none offered
    this slot before. Returns how many offers went out."""
    now = utcnow()
    slot = await Slot.raw(
        """
        SELECT s.id, s.starts_at, s.location, s.appointment_type, s.blocked, t.code
        FROM slot s JOIN appointment_type t ON t.id = s.appointment_type
        WHERE s.id = {} AND NOT EXISTS (
            SELECT 1 FROM appointment a WHERE a.slot = s.id AND a.status = 'booked')
        """,
        slot_id,
    )
    if not slot or slot[0]["blocked"] or as_utc(slot[0]["starts_at"]) < now + BOOKING_LEAD:
        return 0
    starts_at = as_utc(slot[0]["starts_at"])
    entries = await WaitlistEntry.raw(
        """
        SELECT w.id, w.patient, a.confidential
        FROM waitlist_entry w JOIN appointment a ON a.id = w.appointment
        WHERE w.status = 'waiting' AND a.status = 'booked' AND a.visit_type = {}
          AND a.location = {} AND a.starts_at > {}
          AND NOT EXISTS (SELECT 1 FROM waitlist_offer o WHERE o.entry = w.id AND o.slot = {})
          AND NOT EXISTS (SELECT 1 FROM waitlist_offer o
                          WHERE o.entry = w.id AND o.status = 'open' AND o.expires_at > {})
        ORDER BY w.created_at, w.id
        LIMIT {}
        """,
        slot[0]["code"],
        slot[0]["location"],
        starts_at,
        slot_id,
        now,
        OFFER_BATCH,
    )
    # An offer never outlives the time it could still be booked.
    expires_at = min(now + OFFER_TTL, starts_at - BOOKING_LEAD)
    for entry in entries:
        token = secrets.token_urlsafe(24)
        offer = WaitlistOffer(
            entry=entry["id"], slot=slot_id, token_hash=_hash(token), expires_at=expires_at
        )
        await WaitlistOffer.insert(offer)
        path = offer_path(token)
        await send_waitlist_offer(
            patient_id=entry["patient"],
            offer_public_id=str(offer.public_id),
            path=path,
            link=get_settings().base_url + path,
            confidential=bool(entry["confidential"]),
        )
    return len(entries)


async def offers_gone(*, slot_id: int) -> None:
    """The slot was booked: its open offers are gone, and their people are told (inside the
    caller's transaction)."""
    gone = await WaitlistOffer.raw(
        """
        UPDATE waitlist_offer SET status = 'gone'
        WHERE slot = {} AND status = 'open'
        RETURNING entry
        """,
        slot_id,
    )
    for offer in gone:
        entry = await WaitlistEntry.raw(
            """
            SELECT w.patient, a.confidential, s.public_id AS slot_public_id
            FROM waitlist_entry w
            JOIN appointment a ON a.id = w.appointment
            JOIN slot s ON s.id = {}
            WHERE w.id = {}
            """,
            slot_id,
            offer["entry"],
        )
        if entry:
            await send_waitlist_offer_gone(
                patient_id=entry[0]["patient"],
                slot_public_id=str(entry[0]["slot_public_id"]),
                confidential=bool(entry[0]["confidential"]),
            )


async def waitlist_offers_expire() -> int:
    """Every minute (the worker): open offers past their time expire, and the slots they were
    for go to the next waiting visits. Returns how many offers expired."""
    async with write_transaction():
        expired = await WaitlistOffer.raw(
            """
            UPDATE waitlist_offer SET status = 'expired'
            WHERE status = 'open' AND expires_at <= {}
            RETURNING slot
            """,
            utcnow(),
        )
        for slot_id in sorted({row["slot"] for row in expired}):
            still_open = await WaitlistOffer.exists().where(
                WaitlistOffer.slot == slot_id, WaitlistOffer.status == "open"
            )
            if not still_open:
                await waitlist_offer_freed(slot_id=slot_id)
    return len(expired)


@dataclass(frozen=True)
class OfferView:
    status: str  # open | accepted | gone | expired
    slot: SlotLine
    current_visit_public_id: str
    current_starts_at: Any


async def offer_patient(token: str) -> int | None:
    """Whose record an offer link is for, so the page opens within that record's context
    (a parent's link for a child); None for a link that does not exist."""
    rows = await WaitlistOffer.raw(
        """
        SELECT w.patient FROM waitlist_offer o JOIN waitlist_entry w ON w.id = o.entry
        WHERE o.token_hash = {}
        """,
        _hash(token),
    )
    return int(rows[0]["patient"]) if rows else None


async def _offer_row(context: PatientContext, token: str) -> dict[str, Any]:
    rows = await WaitlistOffer.raw(
        """
        SELECT o.id, o.status, o.expires_at, o.slot AS slot_id, s.public_id AS slot_public_id,
               w.id AS entry_id, a.id AS appointment_id, a.public_id AS visit_public_id,
               a.starts_at AS visit_starts_at, a.status AS visit_status, a.slot AS old_slot,
               a.visit_type, a.confidential
        FROM waitlist_offer o
        JOIN waitlist_entry w ON w.id = o.entry
        JOIN appointment a ON a.id = w.appointment
        JOIN slot s ON s.id = o.slot
        WHERE o.token_hash = {} AND w.patient = {} AND (a.confidential = false OR {} = 1)
        """,
        _hash(token),
        context.patient.id,
        1 if context.sees_confidential else 0,
    )
    if not rows:
        raise NotFoundError("offer")
    row: dict[str, Any] = rows[0]
    if row["status"] == "open" and as_utc(row["expires_at"]) <= utcnow():
        row["status"] = "expired"
    return row


async def offer_open(context: PatientContext, token: str) -> OfferView:
    context.require("appointments")
    async with write_transaction():
        row = await _offer_row(context, token)
        slot = await slot_for_booking(row["slot_public_id"])
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.offer_view",
            resource_type="Appointment",
            resource_id=row["visit_public_id"],
        )
    if slot is None:
        raise NotFoundError("offer")
    return OfferView(
        status=row["status"],
        slot=slot_line(slot),
        current_visit_public_id=row["visit_public_id"],
        current_starts_at=as_utc(row["visit_starts_at"]),
    )


class OfferClosedError(Exception):
    """The offer was taken by someone else, used, or expired."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


async def offer_accept(context: PatientContext, token: str) -> str:
    """Take the offered slot in one tap: the link works once; the visit moves to the
    earlier time (the new slot held before the old one frees), the other offers for the
    slot are gone. Returns the new visit's public id."""
    context.require("appointments")
    try:
        async with write_transaction():
            # One change to this record's visits at a time (a move from another tab too).
            await lock_names(f"visits.book:{context.patient.id}")
            row = await _offer_row(context, token)
            # Single use: only the request that turns it from open to accepted goes on.
            claimed = await WaitlistOffer.raw(
                """
                UPDATE waitlist_offer SET status = 'accepted'
                WHERE id = {} AND status = 'open' AND expires_at > {}
                RETURNING id
                """,
                row["id"],
                utcnow(),
            )
            if not claimed or row["visit_status"] != "booked":
                raise OfferClosedError(row["status"] if not claimed else "gone")
            slot = await slot_for_booking(row["slot_public_id"])
            if slot is None or slot["blocked"]:
                raise OfferClosedError("gone")
            new = await slot_hold(
                patient_id=context.patient.id,
                slot=slot,
                channel="portal",
                confidential=bool(row["confidential"]),
            )
            await Appointment.update(
                {
                    Appointment.status: "cancelled",
                    Appointment.cancelled_at: utcnow(),
                    Appointment.cancelled_by: "rescheduled",
                    Appointment.replaced_by: new.id,
                }
            ).where(Appointment.id == row["appointment_id"])
            await WaitlistEntry.update({WaitlistEntry.status: "done"}).where(
                WaitlistEntry.id == row["entry_id"]
            )
            await offers_gone(slot_id=row["slot_id"])
            if row["old_slot"] is not None:
                await waitlist_offer_freed(slot_id=row["old_slot"])
            await audit_record(
                actor=context.actor,
                context=context,
                action="visits.offer_accept",
                resource_type="Appointment",
                resource_id=f"{row['visit_public_id']}>{new.public_id}",
            )
    except SlotTakenError:
        # Booked by someone else a moment ago: this offer is gone too.
        async with write_transaction():
            await WaitlistOffer.update({WaitlistOffer.status: "gone"}).where(
                WaitlistOffer.token_hash == _hash(token)
            )
        raise OfferClosedError("gone") from None
    return str(new.public_id)
