"""Slots from weekly templates keep the location's wall-clock hours across DST, make nothing in
the hour clocks skip, are made once however often the worker runs, and blocked time withdraws
free slots while keeping booked visits (and saying whose they are)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.access import StaffActor
from app.clock import set_clock
from app.db import write_transaction
from app.services.visits.booking import appointment_book
from app.services.visits.inventory import block_add, template_add, template_remove
from app.services.visits.slots import slots_find, slots_generate, template_starts
from app.tables import Appointment, AuditEvent, Clinician, Location, Slot, StaffUser
from tests.factories import hours_from_now, make_person, make_schedule, unique

NEW_YORK = ZoneInfo("America/New_York")


def test_weekly_hours_keep_their_local_time_when_the_clocks_change() -> None:
    # US clocks went forward on Sunday 8 March 2026: Mondays either side stay at 9:00 local.
    starts = template_starts(
        weekday=0,
        start_minute=9 * 60,
        end_minute=10 * 60,
        duration_minutes=30,
        zone=NEW_YORK,
        first_day=date(2026, 3, 2),
        days=14,
    )
    assert [start.astimezone(NEW_YORK).time() for start, _ in starts] == [
        time(9, 0),
        time(9, 30),
    ] * 2
    before, after = starts[0][0], starts[2][0]
    assert before == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # EST, UTC-5
    assert after == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # EDT, UTC-4


def test_no_slot_is_made_in_the_hour_the_clocks_skip() -> None:
    starts = template_starts(
        weekday=6,
        start_minute=2 * 60,
        end_minute=3 * 60 + 30,
        duration_minutes=30,
        zone=NEW_YORK,
        first_day=date(2026, 3, 8),
        days=1,
    )
    assert [start.astimezone(NEW_YORK).time() for start, _ in starts] == [time(3, 0)]


async def _admin() -> StaffActor:
    staff = StaffUser(
        given_name="Ada", family_name=unique("Admin"), email=f"{unique('a')}@c.test", role="admin"
    )
    await StaffUser.insert(staff)
    return StaffActor(
        staff_id=staff.id,
        public_id=str(staff.public_id),
        given_name="Ada",
        family_name=staff.family_name,
        role="admin",
        session_id=0,
        ip="127.0.0.1",
        user_agent="pytest",
    )


async def test_weekly_hours_make_slots_once_under_a_moved_clock_across_dst() -> None:
    set_clock(lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    schedule = await make_schedule([])
    clinician = await Clinician.select(Clinician.public_id).where(
        Clinician.id == schedule.clinician_id
    )
    location = await Location.select(Location.public_id).where(Location.id == schedule.location_id)
    staff = await _admin()
    made = await template_add(
        staff=staff,
        clinician=clinician[0]["public_id"],
        location=location[0]["public_id"],
        type_code="sick_visit",
        weekday=0,
        start_minute=9 * 60,
        end_minute=10 * 60,
    )
    assert made >= 3 * 8  # three 20-minute slots on each of eight Mondays
    async with write_transaction():
        assert await slots_generate() == 0  # the worker's next round adds nothing
    mine = await Slot.select(Slot.starts_at).where(Slot.clinician == schedule.clinician_id)
    local = {row["starts_at"].astimezone(NEW_YORK).strftime("%H:%M") for row in mine}
    assert local == {"09:00", "09:20", "09:40"}
    offsets = {row["starts_at"].astimezone(NEW_YORK).utcoffset() for row in mine}
    assert offsets == {timedelta(hours=-5), timedelta(hours=-4)}


async def test_blocked_time_withdraws_free_slots_and_keeps_booked_visits() -> None:
    schedule = await make_schedule(hours_from_now(100, 101, 102))
    person = await make_person("Kept")
    await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    clinician = await Clinician.select(Clinician.public_id).where(
        Clinician.id == schedule.clinician_id
    )
    start = datetime.now(UTC) + timedelta(hours=99)

    kept = await block_add(
        staff=await _admin(),
        clinician=clinician[0]["public_id"],
        location="",
        starts_at=start,
        ends_at=start + timedelta(hours=5),
        reason="Conference",
    )

    assert [visit.patient_public_id for visit in kept] == [person.patient.public_id]
    # The list names the patient to the admin: it reaches the patient's access history.
    assert await AuditEvent.exists().where(
        AuditEvent.action == "staff.schedule_kept", AuditEvent.patient == person.patient.id
    )
    free = {slot.public_id for slot in await slots_find(type_code="sick_visit", limit=1000)}
    assert not free & set(schedule.slots)


async def test_removing_weekly_hours_lists_the_booked_visits_it_keeps() -> None:
    monday = date.today() + timedelta(days=(7 - date.today().weekday()) % 7 or 7)
    first = datetime.combine(monday, time(9), tzinfo=NEW_YORK).astimezone(UTC)
    schedule = await make_schedule([first, first + timedelta(minutes=20)])
    clinician = await Clinician.select(Clinician.public_id).where(
        Clinician.id == schedule.clinician_id
    )
    location = await Location.select(Location.public_id).where(Location.id == schedule.location_id)
    staff = await _admin()
    await template_add(
        staff=staff,
        clinician=clinician[0]["public_id"],
        location=location[0]["public_id"],
        type_code="sick_visit",
        weekday=0,
        start_minute=9 * 60,
        end_minute=10 * 60,
    )
    person = await make_person("Monday")
    visit = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    hours = await Slot.raw(
        "SELECT public_id FROM schedule_template WHERE clinician = {}", schedule.clinician_id
    )

    kept = await template_remove(staff=staff, public_id=hours[0]["public_id"])

    assert [visit.patient_public_id for visit in kept] == [person.patient.public_id]
    # The list names the patient to the admin: it reaches the patient's access history.
    assert await AuditEvent.exists().where(
        AuditEvent.action == "staff.schedule_kept", AuditEvent.patient == person.patient.id
    )
    free = {slot.public_id for slot in await slots_find(type_code="sick_visit", limit=1000)}
    assert not free & set(schedule.slots)  # withdrawn, and not offered again if cancelled
    still = await Appointment.select(Appointment.status).where(
        Appointment.public_id == visit.public_id
    )
    assert still == [{"status": "booked"}]
