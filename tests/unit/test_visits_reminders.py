"""Reminders three days and one day before a visit land in the outbox at the right moments,
under a moved clock and across a change of the clocks (US clocks went forward on Sunday
8 March 2026); each links to the visit, where it can be confirmed or cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import set_clock
from app.services.visits import visit_reminders_send
from app.services.visits.booking import appointment_book
from app.tables import AccessGrant, OutboxMessage
from tests.factories import Person, make_person, make_schedule, unique, with_contacts

# Monday 9 March 2026, 9:00 in New York (EDT since the day before): 13:00 UTC.
VISIT = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


async def _texts_to(phone: str) -> list[str]:
    rows = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.recipient == phone, OutboxMessage.channel == "sms"
    )
    return [row["body"] for row in rows]


async def _person_since_2020() -> tuple[Person, str]:
    """Someone with a phone, whose access began before the moved clock's dates."""
    person = await make_person()
    await AccessGrant.update({AccessGrant.starts_at: datetime(2020, 1, 1, tzinfo=UTC)}).where(
        AccessGrant.account == person.account.id
    )
    phone = f"+1555016{unique('')[-4:]}"
    await with_contacts(person.patient, phone=phone)
    return person, phone


async def _at(moment: datetime) -> None:
    set_clock(lambda: moment)
    await visit_reminders_send()


async def test_reminders_come_three_days_and_one_day_before_across_a_dst_change() -> None:
    set_clock(lambda: datetime(2026, 3, 1, 15, 0, tzinfo=UTC))
    schedule = await make_schedule([VISIT])
    person, phone = await _person_since_2020()
    await appointment_book(await person.context(), slot_public_id=schedule.slots[0])

    await _at(VISIT - timedelta(days=3, minutes=1))  # Friday 6 March, 7:59 EST
    assert await _texts_to(phone) == []
    await _at(VISIT - timedelta(days=3) + timedelta(minutes=1))
    assert len(await _texts_to(phone)) == 1
    await _at(VISIT - timedelta(days=1, minutes=1))  # Sunday 8 March, 8:59 EDT
    assert len(await _texts_to(phone)) == 1
    await _at(VISIT - timedelta(days=1) + timedelta(minutes=1))
    await _at(VISIT - timedelta(hours=2))  # once each, however often the worker runs
    texts = await _texts_to(phone)
    assert texts == ["You have a visit coming up. Open the patient portal to see it."] * 2


async def test_a_visit_booked_inside_three_days_gets_only_the_day_before_reminder() -> None:
    set_clock(lambda: VISIT - timedelta(days=2))
    schedule = await make_schedule([VISIT + timedelta(minutes=20)])
    person, phone = await _person_since_2020()
    await appointment_book(await person.context(), slot_public_id=schedule.slots[0])

    await _at(VISIT - timedelta(days=2) + timedelta(minutes=5))
    assert await _texts_to(phone) == []
    await _at(VISIT - timedelta(hours=23))
    assert len(await _texts_to(phone)) == 1
