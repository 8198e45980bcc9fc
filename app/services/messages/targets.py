"""Response targets, counted in business hours: a location's opening hours and the clinic's
holidays, the topic's internal target (stricter than the promise), and the honest reply
time a patient is told ("You'll hear back by tomorrow 5 PM").

Everything here is pure arithmetic over a `BusinessCalendar`, except `business_calendar`,
which reads one location's hours and holidays. Times are kept in UTC and compared in UTC:
aware datetimes that share a tzinfo subtract as wall clocks, which is wrong across a change
to or from summer time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.clinic import clinic_profile
from app.tables import ClinicHoliday, ClinicHours, Location

# Monday to Friday, 8:00 to 17:00, when a clinic has set no hours of its own.
DEFAULT_HOURS: Mapping[int, tuple[int, int]] = {day: (8 * 60, 17 * 60) for day in range(5)}
# Looking further than this for an open hour means the calendar has none.
_SEARCH_DAYS = 400


@dataclass(frozen=True)
class Target:
    """How soon the clinic means to answer a topic (internal), and when to warn before."""

    minutes: int  # business minutes from the patient's message to the clinic's answer
    warn_at: float = 0.75  # the share of the target after which it is about to breach


# Internal standards, stricter than the promise: most topics the same day.
TARGETS: Mapping[str, Target] = {
    "question": Target(minutes=4 * 60),
    "refill": Target(minutes=8 * 60),
    "appointment": Target(minutes=2 * 60),
    "billing": Target(minutes=8 * 60),
    "other": Target(minutes=4 * 60),
}
# The promise to patients: one business day (a full day's opening hours), told as the close
# of the day it falls on.
PROMISE_MINUTES = 9 * 60


def target_for(topic: str) -> Target:
    return TARGETS.get(topic, TARGETS["other"])


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    hours: Mapping[int, tuple[int, int]]  # weekday (0 Monday) -> (opens, closes), minutes
    holidays: frozenset[date] = frozenset()

    def open_span(self, day: date) -> tuple[datetime, datetime] | None:
        """When the clinic is open on `day` (in UTC), or None on a closed day."""
        if day in self.holidays:
            return None
        found = self.hours.get(day.weekday())
        if found is None or found[0] >= found[1]:
            return None
        return self._at(day, found[0]), self._at(day, found[1])

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _at(self, day: date, minute: int) -> datetime:
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)
        return local.astimezone(UTC)


def business_add(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """The moment `minutes` of opening hours after `start` (the next opening, for 0 minutes
    outside hours)."""
    remaining = timedelta(minutes=max(minutes, 0))
    moment = start.astimezone(UTC)
    day = calendar.local_day(moment)
    for _ in range(_SEARCH_DAYS):
        span = calendar.open_span(day)
        if span is not None:
            opens, closes = span
            begin = max(moment, opens)
            if begin < closes or (begin == closes and not remaining):
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("the calendar has no opening hours")


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Minutes of opening hours from `start` to `end` (0 when end is not after start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0
    total = timedelta()
    day, last = calendar.local_day(start), calendar.local_day(end)
    while day <= last:
        span = calendar.open_span(day)
        if span is not None:
            begin, finish = max(start, span[0]), min(end, span[1])
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


def close_of_business(calendar: BusinessCalendar, moment: datetime) -> datetime:
    """The close of the open day `moment` falls on (or of the next open day after it)."""
    day = calendar.local_day(moment)
    for _ in range(_SEARCH_DAYS):
        span = calendar.open_span(day)
        if span is not None and span[1] >= moment:
            return span[1]
        day += timedelta(days=1)
    raise ValueError("the calendar has no opening hours")


def previous_close(calendar: BusinessCalendar, moment: datetime) -> datetime:
    """When the clinic last closed before the open day `moment` falls on: messages since
    then came in overnight (or over the weekend)."""
    day = calendar.local_day(moment) - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        span = calendar.open_span(day)
        if span is not None:
            return span[1]
        day -= timedelta(days=1)
    raise ValueError("the calendar has no opening hours")


def next_opening(calendar: BusinessCalendar, moment: datetime) -> datetime:
    """The next time the clinic opens after `moment` (not counting a day already open)."""
    day = calendar.local_day(moment)
    for _ in range(_SEARCH_DAYS):
        span = calendar.open_span(day)
        if span is not None and span[0] > moment:
            return span[0]
        day += timedelta(days=1)
    raise ValueError("the calendar has no opening hours")


@dataclass(frozen=True)
class Deadlines:
    due_at: datetime
    warn_at: datetime


def deadlines(calendar: BusinessCalendar, topic: str, received: datetime) -> Deadlines:
    """When the clinic's answer to a message received then is due, and when to warn."""
    target = target_for(topic)
    return Deadlines(
        due_at=business_add(calendar, received, target.minutes),
        warn_at=business_add(calendar, received, int(target.minutes * target.warn_at)),
    )


def reply_expected_by(calendar: BusinessCalendar, received: datetime) -> datetime:
    """What the patient is told: one business day, at the close of the day it falls on."""
    return close_of_business(calendar, business_add(calendar, received, PROMISE_MINUTES))


async def business_calendar(location_id: int | None = None) -> BusinessCalendar:
    """A location's calendar: its own hours if it has any, else the clinic's (else the
    defaults), the holidays of the whole clinic and its own, in its time zone."""
    rows = await ClinicHours.select(
        ClinicHours.location, ClinicHours.weekday, ClinicHours.opens, ClinicHours.closes
    )
    own = [row for row in rows if location_id is not None and row["location"] == location_id]
    shared = [row for row in rows if row["location"] is None]
    chosen = own or shared
    hours = (
        {row["weekday"]: (row["opens"], row["closes"]) for row in chosen}
        if chosen
        else dict(DEFAULT_HOURS)
    )
    holidays = await ClinicHoliday.select(ClinicHoliday.location, ClinicHoliday.day)
    days = frozenset(
        row["day"] for row in holidays if row["location"] is None or row["location"] == location_id
    )
    zone = clinic_profile().timezone
    if location_id is not None:
        found = await Location.select(Location.timezone).where(Location.id == location_id).first()
        if found is not None:
            zone = ZoneInfo(found["timezone"])
    return BusinessCalendar(zone=zone, hours=hours, holidays=days)
