"""A patient's visits, upcoming and past, one visit's details, and the next visit the care
team wants booked, offered with a real free slot. Every read is scoped by the PatientContext;
confidential visits are for the patient themself (docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.access import PatientContext
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.visits.slots import (
    SLOT_FREE,
    YEARLY_DAYS,
    SlotLine,
    as_utc,
    clinician_name,
)
from app.tables import Appointment

# A suggested visit is at least this far off: time to plan for it, and to change it online.
SUGGEST_AHEAD = timedelta(days=2)


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
    timezone: str = "America/New_York"


@dataclass(frozen=True)
class Suggestion:
    """The visit to book next: why, and the first free time for it."""

    reason: str  # yearly | follow_up | recheck
    slot: SlotLine


@dataclass(frozen=True)
class VisitDetail(VisitLine):
    location_phone: str = ""
    location_city_line: str = ""
    modality: str = "in_person"
    cancel_hours: int = 24
    has_slot: bool = False
    confirmed: bool = False
    on_waitlist: bool = False
    channel: str = ""

    @property
    def is_upcoming(self) -> bool:
        return self.status == "booked" and self.ends_at > utcnow()

    @property
    def may_cancel_online(self) -> bool:
        """Cancelling online closes `cancel_hours` before the start (the type's policy)."""
        return self.is_upcoming and self.starts_at - utcnow() >= timedelta(hours=self.cancel_hours)

    @property
    def map_query(self) -> str:
        return f"{self.location_name}, {self.location_address} {self.location_city_line}".strip()


def yearly_type(context: PatientContext) -> str:
    from app.access import age_rules

    adult = context.patient.age_on(clinic_today()) >= age_rules().adult
    return "annual_physical" if adult else "well_child"


_VISIT_COLUMNS = """a.public_id, a.starts_at, a.ends_at, a.visit_type, a.status,
       c.prefix, c.given_name, c.family_name, l.name AS location_name,
       l.address_line, l.city, l.timezone"""


def _visit_line(row: dict[str, Any]) -> VisitLine:
    return VisitLine(
        public_id=str(row["public_id"]),
        starts_at=as_utc(row["starts_at"]),
        ends_at=as_utc(row["ends_at"]),
        visit_type=row["visit_type"],
        status=row["status"],
        clinician_name=clinician_name(row["prefix"], row["given_name"], row["family_name"]),
        location_name=row["location_name"],
        location_address=f"{row['address_line']}, {row['city']}",
        timezone=row["timezone"],
    )


async def visits_home(
    context: PatientContext, *, limit: int
) -> tuple[list[VisitLine], Suggestion | None]:
    """Upcoming visits and the suggested next one, in one hand-written query (home runs it on
    every view; see bench/README.md). The caller's transaction carries the audit row.

    What is due, in order: the earliest follow-up or recheck the care team asked for, else a
    yearly check-up when none was booked or done in the past year. Its slot is the first free
    one from SUGGEST_AHEAD on, with the clinician who asked (or the patient's own) first."""
    if not context.may("appointments"):
        return [], None
    now, patient = utcnow(), context.patient.id
    age = context.patient.age_on(clinic_today())
    rows = await Appointment.raw(
        f"""
        SELECT * FROM (
            SELECT 'visit' AS kind, {_VISIT_COLUMNS}, '' AS modality, '' AS reason
            FROM appointment a
            JOIN clinician c ON c.id = a.clinician
            JOIN location l ON l.id = a.location
            WHERE a.patient = {{}} AND a.status = 'booked' AND a.ends_at > {{}}
              AND (a.confidential = false OR {{}} = 1)
            ORDER BY a.starts_at
            LIMIT {{}}
        ) upcoming
        UNION ALL
        SELECT * FROM (
            SELECT 'offer' AS kind, s.public_id, s.starts_at, s.ends_at, t.code AS visit_type,
                   'free' AS status, c.prefix, c.given_name, c.family_name,
                   l.name AS location_name, l.address_line, l.city, l.timezone,
                   t.modality, due.reason
            FROM (
                SELECT * FROM (
                    SELECT r.appointment_type AS type_id, r.clinician AS clinician_id,
                           r.reason, 0 AS rank
                    FROM care_recall r
                    WHERE r.patient = {{}} AND r.appointment IS NULL
                    ORDER BY r.due_on
                    LIMIT 1
                ) recall
                UNION ALL
                SELECT t.id, p.primary_clinician, 'yearly', 1
                FROM appointment_type t JOIN patient p ON p.id = {{}}
                WHERE t.code = {{}} AND t.recall_months > 0 AND NOT EXISTS (
                    SELECT 1 FROM appointment a
                    WHERE a.patient = p.id AND a.visit_type = t.code
                      AND a.status IN ('booked', 'fulfilled') AND a.starts_at > {{}}
                )
            ) due
            JOIN appointment_type t ON t.id = due.type_id
            JOIN slot s ON s.appointment_type = t.id
            JOIN clinician c ON c.id = s.clinician
            JOIN location l ON l.id = s.location
            WHERE t.self_bookable = true AND t.min_age <= {{}} AND t.max_age >= {{}}
              AND s.starts_at >= {{}} AND {SLOT_FREE}
            ORDER BY due.rank, CASE WHEN s.clinician = due.clinician_id THEN 0 ELSE 1 END,
                     s.starts_at
            LIMIT 1
        ) offer
        """,  # noqa: S608  (only fixed SQL is formatted in; values are bound)
        patient,
        now,
        1 if context.sees_confidential else 0,
        limit,
        patient,
        patient,
        yearly_type(context),
        now - timedelta(days=YEARLY_DAYS),
        age,
        age,
        now + SUGGEST_AHEAD,
    )
    visits = [_visit_line(row) for row in rows if row["kind"] == "visit"]
    offers = [row for row in rows if row["kind"] == "offer"]
    suggestion = None
    if offers:
        row = offers[0]
        line = _visit_line(row)
        suggestion = Suggestion(
            reason=row["reason"],
            slot=SlotLine(
                public_id=line.public_id,
                starts_at=line.starts_at,
                ends_at=line.ends_at,
                visit_type=line.visit_type,
                modality=row["modality"],
                clinician_name=line.clinician_name,
                location_name=line.location_name,
                location_address=line.location_address,
                timezone=line.timezone,
            ),
        )
    return visits, suggestion


async def visits_upcoming(context: PatientContext, *, limit: int) -> list[VisitLine]:
    """Booked visits not yet over (a visit is still "upcoming" while it is going on)."""
    visits, _ = await visits_home(context, limit=limit)
    return visits


async def visits_list(
    context: PatientContext, *, past: bool, limit: int = 30
) -> tuple[list[VisitLine], Suggestion | None]:
    """Upcoming visits soonest first with the suggested next one, or past visits latest
    first (booked visits that are over, and cancelled or missed ones)."""
    context.require("appointments")
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.list_past" if past else "visits.list_upcoming",
            resource_type="Appointment",
        )
        if not past:
            return await visits_home(context, limit=limit)
        rows = await Appointment.raw(
            f"""
            SELECT {_VISIT_COLUMNS}
            FROM appointment a
            JOIN clinician c ON c.id = a.clinician
            JOIN location l ON l.id = a.location
            WHERE a.patient = {{}} AND (a.confidential = false OR {{}} = 1)
              AND (a.ends_at <= {{}} OR a.status <> 'booked') AND a.replaced_by IS NULL
            ORDER BY a.starts_at DESC
            LIMIT {{}}
            """,  # noqa: S608  (only fixed SQL is formatted in)
            context.patient.id,
            1 if context.sees_confidential else 0,
            utcnow(),
            limit,
        )
        return [_visit_line(row) for row in rows], None


async def visit_row(context: PatientContext, public_id: str) -> dict[str, Any]:
    """One of this record's visits with what the detail page and the changes need; 404 for
    any other record's (or a confidential one a proxy may not see)."""
    rows = await Appointment.raw(
        f"""
        SELECT a.id, a.slot, a.clinician AS clinician_id, a.location AS location_id,
               a.confidential, a.confirmed_at, a.channel, {_VISIT_COLUMNS},
               l.phone AS location_phone, l.state, l.postal_code,
               COALESCE(t.cancel_hours, 24) AS cancel_hours,
               COALESCE(t.modality, 'in_person') AS modality,
               EXISTS (SELECT 1 FROM waitlist_entry w
                       WHERE w.appointment = a.id AND w.status = 'waiting') AS on_waitlist
        FROM appointment a
        JOIN clinician c ON c.id = a.clinician
        JOIN location l ON l.id = a.location
        LEFT JOIN appointment_type t ON t.code = a.visit_type
        WHERE a.public_id = {{}} AND a.patient = {{}} AND (a.confidential = false OR {{}} = 1)
        """,  # noqa: S608  (only fixed SQL is formatted in)
        public_id,
        context.patient.id,
        1 if context.sees_confidential else 0,
    )
    if not rows:
        raise NotFoundError(public_id)
    row: dict[str, Any] = rows[0]
    return row


def visit_detail(row: dict[str, Any]) -> VisitDetail:
    line = _visit_line(row)
    return VisitDetail(
        **line.__dict__,
        location_phone=row["location_phone"],
        location_city_line=f"{row['state']} {row['postal_code']}",
        modality=row["modality"],
        cancel_hours=int(row["cancel_hours"]),
        has_slot=row["slot"] is not None,
        confirmed=row["confirmed_at"] is not None,
        on_waitlist=bool(row["on_waitlist"]),
        channel=row["channel"],
    )


async def visit_open(context: PatientContext, public_id: str) -> VisitDetail:
    context.require("appointments")
    async with write_transaction():
        row = await visit_row(context, public_id)
        await audit_record(
            actor=context.actor,
            context=context,
            action="visits.view",
            resource_type="Appointment",
            resource_id=public_id,
        )
    return visit_detail(row)


def zone_of(line: VisitLine | SlotLine) -> ZoneInfo:
    return ZoneInfo(line.timezone)
