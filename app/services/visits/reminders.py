"""Visit reminders three days and one day before, through each person's notification choices
(the worker runs this every minute). Each links to the visit, where it can be confirmed or
cancelled; nothing about the visit is in the notice itself."""

from __future__ import annotations

from datetime import timedelta

from app.clock import utcnow
from app.db import write_transaction
from app.notices import send_visit_reminder
from app.services.visits.slots import as_utc
from app.tables import Appointment

# (the column that marks it done, how long before the start it goes, from when)
STAGES = (
    ("reminded_3d_at", timedelta(days=3), timedelta(days=1)),
    ("reminded_at", timedelta(days=1), timedelta(0)),
)


async def visit_reminders_send() -> int:
    """Queue each due reminder once. The three-day one is for visits starting in one to three
    days that were booked before the three-day mark (one booked since was just seen, and is
    marked done without a notice); the day-before one for every visit starting within a day.
    Returns how many were queued."""
    now = utcnow()
    queued = 0
    async with write_transaction():
        for column, ahead, nearest in STAGES:
            due = await Appointment.raw(
                f"""
                UPDATE appointment SET {column} = {{}}
                WHERE status = 'booked' AND {column} IS NULL
                  AND starts_at > {{}} AND starts_at <= {{}}
                RETURNING public_id, patient, confidential, created_at, starts_at
                """,  # noqa: S608  (only a fixed column name is formatted in)
                now,
                now + nearest,
                now + ahead,
            )
            for visit in due:
                booked_late = as_utc(visit["created_at"]) > as_utc(visit["starts_at"]) - ahead
                if nearest and booked_late:  # a three-day reminder for a visit just booked
                    continue
                await send_visit_reminder(
                    patient_id=visit["patient"],
                    visit_public_id=str(visit["public_id"]),
                    confidential=bool(visit["confidential"]),
                )
                queued += 1
    return queued
