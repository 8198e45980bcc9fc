"""The waitlist: a freed slot goes to waiting visits oldest wish first, a few at a time,
through the notification path with a link that carries only an opaque token; the first to
accept gets it, the others are told it is gone, a link works once, and offers expire and move
on to the next in line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.clock import set_clock
from app.services.visits.booking import appointment_book, appointment_cancel, waitlist_join
from app.services.visits.waitlist import (
    OFFER_BATCH,
    OfferClosedError,
    offer_accept,
    waitlist_offers_expire,
)
from app.tables import Appointment, OutboxMessage
from tests.factories import Person, make_person, make_schedule, unique, with_contacts

GONE_TEXT = "The earlier visit time you were offered has been taken."
LINK = re.compile(r"https?://\S+/visits/offers/([A-Za-z0-9_-]+)$")


async def _waiting(count: int) -> tuple[list[str], list[tuple[Person, str, str]]]:
    """An early slot held by someone who will cancel, and `count` people booked later who
    asked for something earlier, in order: (person, phone, visit)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    schedule = await make_schedule([now + timedelta(hours=hours) for hours in range(40, 46)])
    people = []
    for index in range(count):
        person = await make_person(f"Wait{index}")
        phone = f"+1555018{unique('')[-4:]}"
        await with_contacts(person.patient, phone=phone)
        visit = await appointment_book(
            await person.context(), slot_public_id=schedule.slots[index + 1]
        )
        await waitlist_join(await person.context(), visit_public_id=visit.public_id)
        people.append((person, phone, visit.public_id))
    return schedule.slots, people


async def _texts(phone: str) -> list[str]:
    rows = (
        await OutboxMessage.select(OutboxMessage.body)
        .where(OutboxMessage.recipient == phone)
        .order_by(OutboxMessage.id)
    )
    return [row["body"] for row in rows]


async def _token(phone: str) -> str:
    for body in reversed(await _texts(phone)):
        found = LINK.search(body)
        if found:
            return found.group(1)
    raise AssertionError(f"no offer texted to {phone}")


async def _free_the_early_slot(slots: list[str]) -> None:
    leaver = await make_person("Leaver")
    visit = await appointment_book(await leaver.context(), slot_public_id=slots[0])
    await appointment_cancel(await leaver.context(), visit_public_id=visit.public_id)


async def test_a_freed_slot_is_offered_in_order_and_the_first_to_accept_gets_it() -> None:
    slots, people = await _waiting(OFFER_BATCH + 1)
    await _free_the_early_slot(slots)

    offered = [person for person in people if any(LINK.search(t) for t in await _texts(person[1]))]
    assert offered == people[:OFFER_BATCH]  # oldest wishes first, a few at a time
    body = next(t for t in await _texts(people[0][1]) if LINK.search(t))
    assert ": an earlier time opened up for a visit. Tap to take it: http" in body  # no more

    (first, _, first_visit), (second, second_phone, second_visit) = people[0], people[1]
    new_visit = await offer_accept(await second.context(), await _token(second_phone))

    moved = await Appointment.select(Appointment.starts_at).where(
        Appointment.public_id == new_visit
    )
    assert moved
    assert moved[0]["starts_at"] < datetime.now(UTC) + timedelta(hours=41)
    old = await Appointment.select(Appointment.status).where(Appointment.public_id == second_visit)
    assert old == [{"status": "cancelled"}]
    for _, phone, _ in (people[0], people[2]):
        assert any(text.startswith(GONE_TEXT) for text in await _texts(phone))
    with pytest.raises(OfferClosedError):  # too late: someone took it
        await offer_accept(await first.context(), await _token(people[0][1]))
    kept = await Appointment.select(Appointment.status).where(Appointment.public_id == first_visit)
    assert kept == [{"status": "booked"}]


async def test_an_offer_link_works_once() -> None:
    slots, people = await _waiting(1)
    await _free_the_early_slot(slots)
    person, phone, _ = people[0]
    token = await _token(phone)
    await offer_accept(await person.context(), token)
    with pytest.raises(OfferClosedError):
        await offer_accept(await person.context(), token)


async def test_offers_expire_and_the_slot_goes_to_the_next_in_line() -> None:
    slots, people = await _waiting(OFFER_BATCH + 1)
    await _free_the_early_slot(slots)
    last_phone = people[-1][1]
    assert not [t for t in await _texts(last_phone) if LINK.search(t)]

    set_clock(lambda: datetime.now(UTC) + timedelta(hours=3))
    assert await waitlist_offers_expire() >= OFFER_BATCH

    assert [t for t in await _texts(last_phone) if LINK.search(t)]
    with pytest.raises(OfferClosedError):  # an expired link no longer books
        await offer_accept(await people[0][0].context(), await _token(people[0][1]))
