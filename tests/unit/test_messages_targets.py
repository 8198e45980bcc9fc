"""Response targets count business hours: opening hours, weekends and holidays, summer time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from app.services.messages.targets import (
    DEFAULT_HOURS,
    BusinessCalendar,
    business_add,
    business_calendar,
    business_minutes_between,
    close_of_business,
    deadlines,
    next_opening,
    previous_close,
    reply_expected_by,
)
from app.tables import ClinicHoliday, ClinicHours, Clinician
from tests.factories import make_clinician

ZONE = ZoneInfo("America/New_York")
# Friday 25 December 2026 is a holiday; the 26th and 27th are a weekend.
CHRISTMAS = date(2026, 12, 25)
CALENDAR = BusinessCalendar(zone=ZONE, hours=DEFAULT_HOURS, holidays=frozenset({CHRISTMAS}))


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def test_a_target_runs_only_in_opening_hours_across_a_holiday_and_a_weekend() -> None:
    received = local(2026, 12, 24, 15)  # Thursday, two hours before closing
    # Two hours on Thursday, nothing on Christmas Friday or the weekend, two on Monday.
    assert business_add(CALENDAR, received, 4 * 60) == local(2026, 12, 28, 10)
    assert business_minutes_between(CALENDAR, received, local(2026, 12, 28, 10)) == 240
    assert business_minutes_between(CALENDAR, received, local(2026, 12, 27, 23)) == 120


def test_a_message_sent_at_night_starts_its_clock_at_the_next_opening() -> None:
    saturday_night = local(2026, 12, 19, 22)
    assert business_add(CALENDAR, saturday_night, 0) == local(2026, 12, 21, 8)
    assert business_add(CALENDAR, saturday_night, 90) == local(2026, 12, 21, 9, 30)
    assert business_minutes_between(CALENDAR, saturday_night, local(2026, 12, 21, 8)) == 0


def test_business_minutes_are_right_across_the_change_from_summer_time() -> None:
    # Summer time ends on Sunday 1 November 2026: Friday is EDT (UTC-4), Monday EST (UTC-5).
    friday = local(2026, 10, 30, 16)
    monday = local(2026, 11, 2, 9)
    assert business_minutes_between(CALENDAR, friday, monday) == 120
    assert business_add(CALENDAR, friday, 120) == monday


def test_the_patient_is_promised_one_business_day_told_as_a_closing_time() -> None:
    # Monday morning: by tomorrow's close.
    assert reply_expected_by(CALENDAR, local(2026, 12, 14, 10)) == local(2026, 12, 15, 17)
    # Before opening on Monday: a whole day is left that day.
    assert reply_expected_by(CALENDAR, local(2026, 12, 14, 7)) == local(2026, 12, 14, 17)
    # Friday evening: Monday's close.
    assert reply_expected_by(CALENDAR, local(2026, 12, 18, 18)) == local(2026, 12, 21, 17)
    # Christmas Eve afternoon: past the holiday and the weekend.
    assert reply_expected_by(CALENDAR, local(2026, 12, 24, 14)) == local(2026, 12, 28, 17)


def test_the_internal_target_is_stricter_than_the_promise() -> None:
    received = local(2026, 12, 14, 10)
    due = deadlines(CALENDAR, "question", received)
    assert due.due_at == local(2026, 12, 14, 14)
    assert due.warn_at == local(2026, 12, 14, 13)
    assert due.due_at < reply_expected_by(CALENDAR, received)


def test_overnight_starts_at_the_last_close_and_end_of_day_looks_to_the_next_opening() -> None:
    monday_morning = local(2026, 12, 28, 9)
    # The last close before Monday was Thursday the 24th: Christmas and the weekend between.
    assert previous_close(CALENDAR, monday_morning) == local(2026, 12, 24, 17)
    assert next_opening(CALENDAR, local(2026, 12, 24, 16)) == local(2026, 12, 28, 8)
    assert close_of_business(CALENDAR, local(2026, 12, 26, 12)) == local(2026, 12, 28, 17)


async def test_a_location_keeps_its_own_hours_and_the_clinic_s_holidays() -> None:
    clinician = await make_clinician()
    location = await Clinician.select(Clinician.location).where(Clinician.id == clinician).first()
    assert location is not None
    location_id = location["location"]
    await ClinicHours.insert(ClinicHours(location=location_id, weekday=5, opens=540, closes=720))
    holiday = date(2031, 7, 4)
    await ClinicHoliday.insert(ClinicHoliday(day=holiday, name="Independence Day"))
    try:
        own = await business_calendar(location_id)
        assert own.hours == {5: (540, 720)}  # Saturday mornings only
        assert holiday in own.holidays
        elsewhere = await business_calendar(None)
        assert 5 not in elsewhere.hours
        assert holiday in elsewhere.holidays
    finally:
        await ClinicHours.delete().where(ClinicHours.location == location_id)
        await ClinicHoliday.delete().where(ClinicHoliday.day == holiday)
