"""A patient's visits: upcoming and past appointments, scoped by the PatientContext."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.access import PatientContext
from app.clock import utcnow
from app.db import write_transaction
from app.notices import send_visit_reminder
from app.services.audit import audit_record
from app.tables import Appointment


@dataclass(frozen=True)
class VisitLine:
    public_id: str
    starts_at: datetime
    ends_at: datetime
    visit_type: str
    status: str
    clinician_name: str
    location_name: str
    location_address: str


def _select_visits(context: PatientContext) -> Any:
    query = Appointment.select(
        Appointment.public_id,
        Appointment.starts_at,
        Appointment.ends_at,
        Appointment.visit_type,
        Appointment.status,
        Appointment.clinician.prefix,
        Appointment.clinician.given_name,
        Appointment.clinician.family_name,
        Appointment.location.name,
        Appointment.location.address_line,
        Appointment.location.city,
    ).where(Appointment.patient == context.patient.id)
    if not context.sees_confidential:
        # Confidential visits are for the patient themself (docs/security.md).
        query = query.where(Appointment.confidential.eq(False))
    return query


def _visit_line(row: dict[str, Any]) -> VisitLine:
    name = " ".join(
        part
        for part in (
            row["clinician.prefix"],
            row["clinician.given_name"],
            row["clinician.family_name"],
        )
        if part
    )
    return VisitLine(
        public_id=row["public_id"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        visit_type=row["visit_type"],
        status=row["status"],
        clinician_name=name,
        location_name=row["location.name"],
        location_address=f"{row['location.address_line']}, {row['location.city']}",
    )


async def visits_upcoming(context: PatientContext, *, limit: int) -> list[VisitLine]:
    """For the home page; the caller's transaction carries the audit row."""
    if not context.may("appointments"):
        return []
    # Hand-written: the home page runs this on every view (see bench/README.md). A visit
    # is still "upcoming" while it is going on.
    rows = await Appointment.raw(
        """
        SELECT a.public_id, a.starts_at, a.ends_at, a.visit_type, a.status,
               c.prefix AS "clinician.prefix", c.given_name AS "clinician.given_name",
               c.family_name AS "clinician.family_name", l.name AS "location.name",
               l.address_line AS "location.address_line", l.city AS "location.city"
        FROM appointment a
        JOIN clinician c ON c.id = a.clinician
        JOIN location l ON l.id = a.location
        WHERE a.patient = {} AND a.status = 'booked' AND a.ends_at > {}
          AND (a.confidential = false OR {} = 1)
        ORDER BY a.starts_at
        LIMIT {}
        """,
        context.patient.id,
        utcnow(),
        1 if context.sees_confidential else 0,
        limit,
    )
    return [_visit_line(row) for row in rows]


async def visits_list(context: PatientContext, *, past: bool, limit: int = 30) -> list[VisitLine]:
    """Upcoming visits soonest first, or past visits latest first."""
    context.require("appointments")
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.list_past" if past else "visits.list_upcoming",
            resource_type="Appointment",
        )
        if not past:
            return await visits_upcoming(context, limit=limit)
        rows = await (
            _select_visits(context)
            .where(Appointment.ends_at <= utcnow())
            .order_by(Appointment.starts_at, ascending=False)
            .limit(limit)
        )
        return [_visit_line(row) for row in rows]


REMINDER_AHEAD = timedelta(hours=24)


async def visit_reminders_send() -> int:
    """Queue the day-before reminder for each booked visit starting within a day, once,
    through each person's notification choices (the worker runs this every minute)."""
    now = utcnow()
    async with write_transaction():
        due = await Appointment.raw(
            """
            UPDATE appointment SET reminded_at = {}
            WHERE status = 'booked' AND reminded_at IS NULL
              AND starts_at > {} AND starts_at <= {}
            RETURNING public_id, patient, confidential
            """,
            now,
            now,
            now + REMINDER_AHEAD,
        )
        for visit in due:
            await send_visit_reminder(
                patient_id=visit["patient"],
                visit_public_id=str(visit["public_id"]),
                confidential=bool(visit["confidential"]),
            )
    return len(due)
