"""The clinic's side of scheduling: appointment types, clinicians' weekly templates, blocked
times, and the day's visits. Staff reach it by role (console/roles.py: `scheduling` for the
day view, `scheduling.inventory` for what can be booked), enforced by the console router's
guards (app/handlers/console/scheduling.py).

A change never drops a booked visit silently: removing hours or blocking time withdraws the
free slots in it, keeps every booked visit, and lists them so the front desk can call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.access import StaffActor
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_staff
from app.services.console.patients import audit_staff_saw
from app.services.visits.slots import as_utc, clinician_name, slots_block_covered, slots_generate
from app.tables import (
    Appointment,
    AppointmentType,
    Clinician,
    Location,
    ScheduleBlock,
    ScheduleTemplate,
    Slot,
)

WEEKDAYS = range(7)


class InventoryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DayVisit:
    public_id: str
    starts_at: datetime
    timezone: str
    patient_name: str
    patient_public_id: str
    visit_type: str
    clinician_name: str
    status: str
    confirmed: bool
    channel: str


@dataclass(frozen=True)
class Kept:
    """A booked visit inside withdrawn hours or blocked time: kept, for the desk to call."""

    starts_at: datetime
    timezone: str
    patient_name: str
    patient_public_id: str
    clinician_name: str


@dataclass(frozen=True)
class Inventory:
    types: list[dict[str, Any]]
    templates: list[dict[str, Any]]
    blocks: list[dict[str, Any]]
    clinicians: list[dict[str, Any]]
    locations: list[dict[str, Any]]


def parse_minute(text: str) -> int:
    """'09:30' -> 570."""
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


async def day_view(*, staff: StaffActor, day: date, location: str = "") -> list[DayVisit]:
    """Every visit of a day at the clinic (its time zone), confirmed and cancelled ones
    included, with where each was booked; audited per patient shown."""
    locations = await Location.select(Location.id, Location.public_id, Location.timezone)
    chosen = [row for row in locations if not location or row["public_id"] == location]
    found: list[DayVisit] = []
    for place in chosen:
        zone = ZoneInfo(place["timezone"])
        start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        rows = await Appointment.raw(
            """
            SELECT a.public_id, a.starts_at, a.visit_type, a.status, a.confirmed_at, a.channel,
                   p.id AS patient_id, p.public_id AS patient_public_id, p.given_name,
                   p.family_name, c.prefix, c.given_name AS c_given, c.family_name AS c_family
            FROM appointment a
            JOIN patient p ON p.id = a.patient
            JOIN clinician c ON c.id = a.clinician
            WHERE a.location = {} AND a.starts_at >= {} AND a.starts_at < {}
              AND a.replaced_by IS NULL
            ORDER BY a.starts_at, a.id
            """,
            place["id"],
            start,
            end,
        )
        found.extend(
            DayVisit(
                public_id=str(row["public_id"]),
                starts_at=as_utc(row["starts_at"]),
                timezone=place["timezone"],
                patient_name=f"{row['given_name']} {row['family_name']}",
                patient_public_id=str(row["patient_public_id"]),
                visit_type=row["visit_type"],
                clinician_name=clinician_name(row["prefix"], row["c_given"], row["c_family"]),
                status=row["status"],
                confirmed=row["confirmed_at"] is not None,
                channel=row["channel"],
            )
            for row in rows
        )
        await audit_staff_saw(
            staff=staff,
            action="staff.schedule_day",
            patients=[(row["patient_id"], str(row["patient_public_id"])) for row in rows],
        )
    return sorted(found, key=lambda visit: visit.starts_at)


async def inventory_read(*, staff: StaffActor) -> Inventory:
    types = await AppointmentType.select().order_by(AppointmentType.id)
    templates = await ScheduleTemplate.raw(
        """
        SELECT st.public_id, st.weekday, st.start_minute, st.end_minute, t.code,
               c.prefix, c.given_name, c.family_name, l.name AS location_name
        FROM schedule_template st
        JOIN appointment_type t ON t.id = st.appointment_type
        JOIN clinician c ON c.id = st.clinician
        JOIN location l ON l.id = st.location
        WHERE st.active = true
        ORDER BY c.family_name, st.weekday, st.start_minute
        """
    )
    blocks = await ScheduleBlock.raw(
        """
        SELECT b.public_id, b.starts_at, b.ends_at, b.reason, c.prefix, c.given_name,
               c.family_name, l.name AS location_name, COALESCE(l.timezone, cl.timezone,
               'America/New_York') AS timezone
        FROM schedule_block b
        LEFT JOIN clinician c ON c.id = b.clinician
        LEFT JOIN location l ON l.id = b.location
        LEFT JOIN location cl ON cl.id = c.location
        WHERE b.ends_at > {}
        ORDER BY b.starts_at
        """,
        utcnow(),
    )
    for row in [*templates, *blocks]:
        row["clinician_name"] = (
            clinician_name(row["prefix"], row["given_name"], row["family_name"])
            if row["given_name"]
            else ""
        )
    for row in blocks:
        row["starts_at"], row["ends_at"] = as_utc(row["starts_at"]), as_utc(row["ends_at"])
    clinicians = await Clinician.select(
        Clinician.public_id, Clinician.prefix, Clinician.given_name, Clinician.family_name
    ).order_by(Clinician.family_name)
    for row in clinicians:
        row["name"] = clinician_name(row["prefix"], row["given_name"], row["family_name"])
    locations = await Location.select(Location.public_id, Location.name).order_by(Location.code)
    return Inventory(types, templates, blocks, clinicians, locations)


async def type_save(*, staff: StaffActor, code: str, fields: dict[str, Any]) -> None:
    """Change a type's booking rules (duration, who may book, cancellation hours). Slots
    already made keep their length; new ones use the new duration."""
    allowed = {
        "duration_minutes": AppointmentType.duration_minutes,
        "min_age": AppointmentType.min_age,
        "max_age": AppointmentType.max_age,
        "cancel_hours": AppointmentType.cancel_hours,
        "established_patients": AppointmentType.established_patients,
        "new_patients": AppointmentType.new_patients,
        "self_bookable": AppointmentType.self_bookable,
        "modality": AppointmentType.modality,
    }
    values: dict[Any, Any] = {
        allowed[name]: value for name, value in fields.items() if name in allowed
    }
    if not 5 <= int(fields.get("duration_minutes", 30)) <= 240:
        raise InventoryError("duration")
    if fields.get("modality", "in_person") not in ("in_person", "video"):
        raise InventoryError("modality")
    async with write_transaction():
        changed = (
            await AppointmentType.update(values)
            .where(AppointmentType.code == code)
            .returning(AppointmentType.id)
        )
        if not changed:
            raise NotFoundError(code)
        await audit_staff(
            staff=staff,
            action="staff.schedule_type",
            resource_type="AppointmentType",
            resource_id=code,
        )


async def template_add(
    *,
    staff: StaffActor,
    clinician: str,
    location: str,
    type_code: str,
    weekday: int,
    start_minute: int,
    end_minute: int,
) -> int:
    """Weekly hours for a clinician: slots are made for the coming weeks at once. Returns
    how many."""
    if weekday not in WEEKDAYS or not 0 <= start_minute < end_minute <= 24 * 60:
        raise InventoryError("hours")
    async with write_transaction():
        found = {
            "clinician": await Clinician.select(Clinician.id)
            .where(Clinician.public_id == clinician)
            .first(),
            "location": await Location.select(Location.id)
            .where(Location.public_id == location)
            .first(),
            "type": await AppointmentType.select(AppointmentType.id)
            .where(AppointmentType.code == type_code)
            .first(),
        }
        missing = [name for name, row in found.items() if row is None]
        if missing:
            raise InventoryError(missing[0])
        template = ScheduleTemplate(
            clinician=found["clinician"]["id"],  # type: ignore[index]
            location=found["location"]["id"],  # type: ignore[index]
            appointment_type=found["type"]["id"],  # type: ignore[index]
            weekday=weekday,
            start_minute=start_minute,
            end_minute=end_minute,
        )
        await ScheduleTemplate.insert(template)
        made = await slots_generate()
        await audit_staff(
            staff=staff,
            action="staff.schedule_template_add",
            resource_type="Schedule",
            resource_id=str(template.public_id),
        )
    return made


async def _kept_in(
    staff: StaffActor, action: str, conditions: str, values: list[Any]
) -> list[Kept]:
    """The booked visits a change keeps, to call those patients; each patient named gets an
    audit row (the list reaches their access history), in the caller's transaction."""
    rows = await Appointment.raw(
        f"""
        SELECT a.starts_at, l.timezone, p.id AS patient_id, p.given_name, p.family_name,
               p.public_id AS patient_public_id, c.prefix, c.given_name AS c_given,
               c.family_name AS c_family
        FROM appointment a
        JOIN slot s ON s.id = a.slot
        JOIN patient p ON p.id = a.patient
        JOIN clinician c ON c.id = a.clinician
        JOIN location l ON l.id = a.location
        WHERE a.status = 'booked' AND {conditions}
        ORDER BY a.starts_at
        """,  # noqa: S608  (only fixed SQL is formatted in)
        *values,
    )
    for patient_id, public_id in {r["patient_id"]: r["patient_public_id"] for r in rows}.items():
        await audit_staff(
            staff=staff,
            action=action,
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=str(public_id),
        )
    return [
        Kept(
            starts_at=as_utc(row["starts_at"]),
            timezone=row["timezone"],
            patient_name=f"{row['given_name']} {row['family_name']}",
            patient_public_id=str(row["patient_public_id"]),
            clinician_name=clinician_name(row["prefix"], row["c_given"], row["c_family"]),
        )
        for row in rows
    ]


async def template_remove(*, staff: StaffActor, public_id: str) -> list[Kept]:
    """Stop weekly hours: their future free slots are withdrawn; booked visits stay, and are
    returned so the desk can call those patients if the clinician is not there."""
    async with write_transaction():
        template = (
            await ScheduleTemplate.select()
            .where(ScheduleTemplate.public_id == public_id, ScheduleTemplate.active.eq(True))
            .first()
        )
        if template is None:
            raise NotFoundError(public_id)
        await ScheduleTemplate.update({ScheduleTemplate.active: False}).where(
            ScheduleTemplate.id == template["id"]
        )
        future = await Slot.raw(
            """
            SELECT s.id, s.starts_at, l.timezone FROM slot s JOIN location l ON l.id = s.location
            WHERE s.clinician = {} AND s.location = {} AND s.appointment_type = {}
              AND s.starts_at > {} AND s.blocked = false
            """,
            template["clinician"],
            template["location"],
            template["appointment_type"],
            utcnow(),
        )
        withdrawn = []
        for slot in future:
            local = as_utc(slot["starts_at"]).astimezone(ZoneInfo(slot["timezone"]))
            minute = local.hour * 60 + local.minute
            if (
                local.weekday() == template["weekday"]
                and template["start_minute"] <= minute < template["end_minute"]
            ):
                withdrawn.append(slot["id"])
        kept: list[Kept] = []
        if withdrawn:
            await Slot.update({Slot.blocked: True}).where(Slot.id.is_in(withdrawn))
            placeholders = ", ".join("{}" for _ in withdrawn)
            kept = await _kept_in(
                staff, "staff.schedule_kept", f"s.id IN ({placeholders})", withdrawn
            )
        await audit_staff(
            staff=staff,
            action="staff.schedule_template_remove",
            resource_type="Schedule",
            resource_id=public_id,
        )
    return kept


async def block_add(
    *,
    staff: StaffActor,
    clinician: str,
    location: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
) -> list[Kept]:
    """Block time (a clinician's, a location's, or both for a holiday): its free slots are
    withdrawn at once; booked visits in it stay and are returned for the desk to call."""
    if ends_at <= starts_at:
        raise InventoryError("times")
    async with write_transaction():
        clinician_id = location_id = None
        if clinician:
            row = (
                await Clinician.select(Clinician.id).where(Clinician.public_id == clinician).first()
            )
            if row is None:
                raise InventoryError("clinician")
            clinician_id = row["id"]
        if location:
            row = await Location.select(Location.id).where(Location.public_id == location).first()
            if row is None:
                raise InventoryError("location")
            location_id = row["id"]
        if clinician_id is None and location_id is None:
            raise InventoryError("who")
        block = ScheduleBlock(
            clinician=clinician_id,
            location=location_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason[:100],
        )
        await ScheduleBlock.insert(block)
        await slots_block_covered()
        conditions = ["s.starts_at < {}", "s.ends_at > {}"]
        values: list[Any] = [ends_at, starts_at]
        for column, value in (("s.clinician", clinician_id), ("s.location", location_id)):
            if value is not None:
                conditions.append(f"{column} = {{}}")
                values.append(value)
        kept = await _kept_in(staff, "staff.schedule_kept", " AND ".join(conditions), values)
        await audit_staff(
            staff=staff,
            action="staff.schedule_block",
            resource_type="Schedule",
            resource_id=str(block.public_id),
        )
    return kept


# How far from today a typed date may be: further is a typo (year 9999), not a plan.
PLANNING_YEARS = 5


def typed_day(day: str) -> date:
    """A date typed in the console, within PLANNING_YEARS of today (ValueError otherwise)."""
    chosen = date.fromisoformat(day)
    if abs((chosen - clinic_today()).days) > PLANNING_YEARS * 366:
        raise ValueError(day)
    return chosen


def local_datetime(day: str, clock: str, zone: ZoneInfo) -> datetime:
    """A date and a time typed in a location's zone, as UTC."""
    minute = parse_minute(clock or "00:00")
    start = typed_day(day) + timedelta(days=minute // (24 * 60))
    minute %= 24 * 60
    return datetime.combine(start, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)
