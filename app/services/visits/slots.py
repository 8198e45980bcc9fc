"""Slots: generated from clinicians' weekly templates in each location's time zone, found
first-available-first, and held by a booked appointment.

A slot is free while no booked appointment holds it and no block covers it. Holding one is
an INSERT that the partial unique index `appointment_slot_booked` lets succeed once: that
index, not a check in this code, is what keeps two people out of one slot (migrations/).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.access import PatientContext
from app.clinic import clinic_today
from app.clock import utcnow
from app.services.facts import record_fact
from app.tables import Appointment, AppointmentType, CareRecall, Slot

# Nobody books a time that starts within the hour: they could not get there.
BOOKING_LEAD = timedelta(hours=1)
# How far ahead templates make slots (the worker keeps the window filled).
HORIZON_DAYS = 56
# A yearly check-up is due a year after the last one.
YEARLY_DAYS = 365


class SlotTakenError(Exception):
    """Someone else holds the slot (or it was never free): the database said so."""


def as_utc(value: Any) -> datetime:
    """A timestamp from a raw query: SQLite may hand back text where a column's type is lost
    (a UNION), PostgreSQL a datetime; both are UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(type(value).__name__)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def clinician_name(prefix: str | None, given: str, family: str) -> str:
    return " ".join(part for part in (prefix, given, family) if part)


@dataclass(frozen=True)
class SlotLine:
    """A free time, shown in its location's zone."""

    public_id: str
    starts_at: datetime
    ends_at: datetime
    visit_type: str
    modality: str
    clinician_name: str
    location_name: str
    location_address: str
    timezone: str
    clinician_id: str = ""
    location_id: str = ""

    @property
    def local_day(self) -> date:
        return self.starts_at.astimezone(ZoneInfo(self.timezone)).date()


# Columns for SlotLine over slot s, clinician c, location l and appointment_type t.
SLOT_COLUMNS = """s.public_id, s.starts_at, s.ends_at, t.code AS visit_type, t.modality,
       c.prefix, c.given_name, c.family_name, l.name AS location_name,
       l.address_line, l.city, l.timezone, c.public_id AS clinician_public_id,
       l.public_id AS location_public_id"""
SLOT_JOINS = """JOIN clinician c ON c.id = s.clinician
        JOIN location l ON l.id = s.location
        JOIN appointment_type t ON t.id = s.appointment_type"""
# Free: not blocked, the clinician takes online bookings, no booked visit holds it.
SLOT_FREE = """s.blocked = false AND c.accepts_online_booking = true
          AND NOT EXISTS (
              SELECT 1 FROM appointment a WHERE a.slot = s.id AND a.status = 'booked')"""


def slot_line(row: dict[str, Any]) -> SlotLine:
    return SlotLine(
        public_id=str(row["public_id"]),
        starts_at=as_utc(row["starts_at"]),
        ends_at=as_utc(row["ends_at"]),
        visit_type=row["visit_type"],
        modality=row["modality"],
        clinician_name=clinician_name(row["prefix"], row["given_name"], row["family_name"]),
        location_name=row["location_name"],
        location_address=f"{row['address_line']}, {row['city']}",
        timezone=row["timezone"],
        clinician_id=str(row["clinician_public_id"]),
        location_id=str(row["location_public_id"]),
    )


@dataclass(frozen=True)
class BookableType:
    id: int
    code: str
    duration_minutes: int
    modality: str
    cancel_hours: int


async def types_bookable(context: PatientContext) -> list[BookableType]:
    """The kinds of visit this patient may book online: by age, and by whether the clinic
    has seen them before (some types are for established patients only). A visit the care
    team asked for (an open recall) may always be booked."""
    age = context.patient.age_on(clinic_today())
    established = await Appointment.exists().where(
        Appointment.patient == context.patient.id, Appointment.status == "fulfilled"
    )
    asked = {
        row["appointment_type"]
        for row in await CareRecall.select(CareRecall.appointment_type).where(
            CareRecall.patient == context.patient.id, CareRecall.appointment.is_null()
        )
    }
    rows = await AppointmentType.select().where(
        AppointmentType.self_bookable.eq(True),
        AppointmentType.min_age <= age,
        AppointmentType.max_age >= age,
    )
    return [
        BookableType(
            id=row["id"],
            code=row["code"],
            duration_minutes=row["duration_minutes"],
            modality=row["modality"],
            cancel_hours=row["cancel_hours"],
        )
        for row in sorted(rows, key=lambda row: row["id"])
        if row["id"] in asked
        or (row["established_patients"] if established else row["new_patients"])
    ]


async def slots_find(
    *,
    type_code: str,
    after: datetime | None = None,
    before: datetime | None = None,
    clinician: str = "",
    location: str = "",
    limit: int = 40,
    excluding: str = "",
) -> list[SlotLine]:
    """Free slots of a type, first available first; optionally one clinician's or one
    location's (their public ids), within [after, before)."""
    start = max(after or utcnow(), utcnow() + BOOKING_LEAD)
    conditions = ["t.code = {}", "s.starts_at >= {}", SLOT_FREE]
    values: list[Any] = [type_code, start]
    for sql, value in (
        ("s.starts_at < {}", before),
        ("c.public_id = {}", clinician or None),
        ("l.public_id = {}", location or None),
        ("s.public_id <> {}", excluding or None),
    ):
        if value is not None:
            conditions.append(sql)
            values.append(value)
    rows = await Slot.raw(
        f"""
        SELECT {SLOT_COLUMNS}
        FROM slot s
        {SLOT_JOINS}
        WHERE {" AND ".join(conditions)}
        ORDER BY s.starts_at, s.id
        LIMIT {{}}
        """,  # noqa: S608  (only fixed SQL is formatted in; values are bound)
        *values,
        limit,
    )
    return [slot_line(row) for row in rows]


async def slot_for_booking(public_id: str) -> dict[str, Any] | None:
    """A slot with what booking it needs, free or not (the insert decides)."""
    rows = await Slot.raw(
        f"""
        SELECT s.id, s.clinician AS clinician_id, s.location AS location_id, s.blocked,
               t.id AS type_id, t.cancel_hours, c.accepts_online_booking, {SLOT_COLUMNS},
               NOT EXISTS (SELECT 1 FROM appointment a
                           WHERE a.slot = s.id AND a.status = 'booked') AS free
        FROM slot s
        {SLOT_JOINS}
        WHERE s.public_id = {{}}
        """,  # noqa: S608  (only fixed SQL is formatted in)
        public_id,
    )
    return rows[0] if rows else None


def is_unique_violation(error: BaseException) -> bool:
    return isinstance(error, sqlite3.IntegrityError | asyncpg.exceptions.UniqueViolationError)


async def slot_hold(
    *, patient_id: int, slot: dict[str, Any], channel: str, confidential: bool = False
) -> Appointment:
    """Book the slot for the patient inside the caller's transaction, or raise SlotTakenError.
    The unique index refuses a second booked appointment on one slot, so of any number of
    requests at the same moment exactly one gets here without an error."""
    appointment = Appointment(
        patient=patient_id,
        clinician=slot["clinician_id"],
        location=slot["location_id"],
        slot=slot["id"],
        starts_at=as_utc(slot["starts_at"]),
        ends_at=as_utc(slot["ends_at"]),
        visit_type=slot["visit_type"],
        status="booked",
        channel=channel,
        confidential=confidential,
        created_at=utcnow(),  # the portal's clock: reminders compare it with the start
    )
    try:
        await Appointment.insert(appointment)
    except Exception as error:
        if is_unique_violation(error):
            raise SlotTakenError from error
        raise
    await record_fact(
        "visit_booked", patient_id, slot["location_id"], appointment.created_at, channel=channel
    )
    return appointment


# Generating slots -------------------------------------------------------------------------


def _local_start(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time, or None when that time does not exist
    that day (the hour skipped when clocks go forward)."""
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def template_starts(
    *,
    weekday: int,
    start_minute: int,
    end_minute: int,
    duration_minutes: int,
    zone: ZoneInfo,
    first_day: date,
    days: int,
) -> list[tuple[datetime, datetime]]:
    """Each slot a weekly template makes over `days` days from `first_day`, as UTC
    (start, end). Local wall-clock times stay the same across a DST change; the UTC
    instants move by the hour."""
    found = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() != weekday:
            continue
        minute = start_minute
        while minute + duration_minutes <= end_minute:
            start = _local_start(day, minute, zone)
            if start is not None:
                found.append((start, start + timedelta(minutes=duration_minutes)))
            minute += duration_minutes
    return found


async def slots_generate(*, days: int = HORIZON_DAYS) -> int:
    """Make the slots every active template promises for the coming `days` (in the caller's
    transaction). Idempotent: a clinician has one slot per start time, so existing ones stay
    as they are. A slot inside a block is made blocked. Returns how many are new."""
    templates = await Slot.raw(
        """
        SELECT st.clinician, st.location, st.appointment_type, st.weekday, st.start_minute,
               st.end_minute, t.duration_minutes, l.timezone
        FROM schedule_template st
        JOIN appointment_type t ON t.id = st.appointment_type
        JOIN location l ON l.id = st.location
        WHERE st.active = true
        """
    )
    now = utcnow()
    rows: list[Slot] = []
    for template in templates:
        zone = ZoneInfo(template["timezone"])
        for start, end in template_starts(
            weekday=template["weekday"],
            start_minute=template["start_minute"],
            end_minute=template["end_minute"],
            duration_minutes=template["duration_minutes"],
            zone=zone,
            first_day=now.astimezone(zone).date(),
            days=days,
        ):
            if start > now:
                rows.append(
                    Slot(
                        clinician=template["clinician"],
                        location=template["location"],
                        appointment_type=template["appointment_type"],
                        starts_at=start,
                        ends_at=end,
                    )
                )
    made = 0
    for begin in range(0, len(rows), 400):
        result = (
            await Slot.insert(*rows[begin : begin + 400])
            .on_conflict(target=(Slot.clinician, Slot.starts_at), action="DO NOTHING")
            .returning(Slot.id)
        )
        made += len(result)
    if made:
        await slots_block_covered()
    return made


async def slots_block_covered() -> None:
    """Mark blocked every future slot a block covers (a clinician's, or a whole location's)."""
    await Slot.raw(
        """
        UPDATE slot SET blocked = true
        WHERE blocked = false AND starts_at > {} AND EXISTS (
            SELECT 1 FROM schedule_block b
            WHERE b.starts_at < slot.ends_at AND b.ends_at > slot.starts_at
              AND (b.clinician IS NULL OR b.clinician = slot.clinician)
              AND (b.location IS NULL OR b.location = slot.location)
        )
        """,
        utcnow(),
    )
