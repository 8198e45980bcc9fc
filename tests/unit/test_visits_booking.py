"""Booking, moving and cancelling visits: a slot is booked at most once under any concurrency
(the database decides), a move holds the new slot before the old one frees, cancelling online
follows the type's policy, caregivers book within their scope, and every change is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.errors import NotFoundError, NotPermittedError
from app.services.visits import visits_list
from app.services.visits.booking import (
    MAX_UPCOMING_ONLINE,
    JustTakenError,
    LateChangeError,
    TooManyBookedError,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    booking_preview,
)
from app.services.visits.slots import slots_find
from app.tables import Appointment, AuditEvent, Slot
from tests.factories import (
    grant,
    hours_from_now,
    make_account,
    make_person,
    make_schedule,
    years_ago,
)

CONCURRENT = 50


async def test_fifty_concurrent_bookings_of_one_slot_give_it_to_exactly_one() -> None:
    schedule = await make_schedule(hours_from_now(48, 49, 50))
    taken = schedule.slots[0]
    people = [await make_person(f"Rush{n}") for n in range(CONCURRENT)]
    contexts = [await person.context() for person in people]

    results = await asyncio.gather(
        *(appointment_book(context, slot_public_id=taken) for context in contexts),
        return_exceptions=True,
    )

    booked = [result for result in results if not isinstance(result, BaseException)]
    refused = [result for result in results if isinstance(result, JustTakenError)]
    assert len(booked) == 1
    assert len(refused) == CONCURRENT - 1, [r for r in results if isinstance(r, Exception)][:3]
    slot_id = (await Slot.select(Slot.id).where(Slot.public_id == taken))[0]["id"]
    holders = await Appointment.count().where(
        Appointment.slot == slot_id, Appointment.status == "booked"
    )
    assert holders == 1
    # "Just taken — here are the next times": real, free, and not the one just taken.
    for refusal in refused:
        offered = {slot.public_id for slot in refusal.alternatives}
        assert taken not in offered
        assert set(schedule.slots[1:]) <= offered


async def test_the_database_refuses_a_second_booked_visit_on_one_slot() -> None:
    """Not only a check in code: an insert that skips the service is refused too."""
    schedule = await make_schedule(hours_from_now(30))
    person = await make_person()
    await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    slot = await Slot.select().where(Slot.public_id == schedule.slots[0]).first()
    assert slot is not None
    with pytest.raises(Exception, match=r"(?i)unique"):
        await Appointment.insert(
            Appointment(
                patient=person.patient.id,
                clinician=slot["clinician"],
                location=slot["location"],
                slot=slot["id"],
                starts_at=slot["starts_at"],
                ends_at=slot["ends_at"],
                visit_type="sick_visit",
            )
        )


async def test_a_booking_records_the_portal_as_its_channel_and_is_audited() -> None:
    schedule = await make_schedule(hours_from_now(30))
    person = await make_person()
    booked = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    row = await Appointment.select(Appointment.channel, Appointment.status).where(
        Appointment.public_id == booked.public_id
    )
    assert row == [{"channel": "portal", "status": "booked"}]
    assert await AuditEvent.exists().where(
        AuditEvent.action == "visits.book", AuditEvent.resource_id == booked.public_id
    )


async def test_one_record_holds_only_so_many_upcoming_visits_booked_online() -> None:
    """One account cannot empty a clinician's week: past the limit the clinic books by phone,
    and parallel requests cannot slip under it. Moving a visit still works at the limit."""
    hours = [30 + 2 * n for n in range(MAX_UPCOMING_ONLINE + 3)]
    schedule = await make_schedule(hours_from_now(*hours))
    person = await make_person()
    context = await person.context()
    held = [
        await appointment_book(context, slot_public_id=slot)
        for slot in schedule.slots[: MAX_UPCOMING_ONLINE - 1]
    ]
    rest = schedule.slots[MAX_UPCOMING_ONLINE - 1 :]

    results = await asyncio.gather(
        *(appointment_book(context, slot_public_id=slot) for slot in rest[:3]),
        return_exceptions=True,
    )

    assert sum(not isinstance(result, BaseException) for result in results) == 1
    assert sum(isinstance(result, TooManyBookedError) for result in results) == 2
    upcoming = await Appointment.count().where(
        Appointment.patient == person.patient.id, Appointment.status == "booked"
    )
    assert upcoming == MAX_UPCOMING_ONLINE
    with pytest.raises(TooManyBookedError):
        await booking_preview(context, rest[-1])
    free = [
        slot
        for slot, result in zip(rest[:3], results, strict=True)
        if isinstance(result, BaseException)
    ]
    moved = await appointment_reschedule(
        context, visit_public_id=held[0].public_id, slot_public_id=free[0]
    )
    assert moved.public_id != held[0].public_id


async def test_a_move_keeps_the_old_visit_when_the_new_time_is_taken() -> None:
    schedule = await make_schedule(hours_from_now(50, 52))
    person, rival = await make_person(), await make_person("Rival")
    visit = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    await appointment_book(await rival.context(), slot_public_id=schedule.slots[1])

    with pytest.raises(JustTakenError):
        await appointment_reschedule(
            await person.context(),
            visit_public_id=visit.public_id,
            slot_public_id=schedule.slots[1],
        )

    row = await Appointment.select(Appointment.status).where(
        Appointment.public_id == visit.public_id
    )
    assert row == [{"status": "booked"}]


async def test_a_move_holds_the_new_slot_and_then_frees_the_old_one() -> None:
    schedule = await make_schedule(hours_from_now(50, 52))
    person = await make_person()
    visit = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])

    moved = await appointment_reschedule(
        await person.context(),
        visit_public_id=visit.public_id,
        slot_public_id=schedule.slots[1],
    )

    old = await Appointment.select(
        Appointment.status, Appointment.cancelled_by, Appointment.replaced_by.public_id
    ).where(Appointment.public_id == visit.public_id)
    assert old == [
        {
            "status": "cancelled",
            "cancelled_by": "rescheduled",
            "replaced_by.public_id": moved.public_id,
        }
    ]
    free = {slot.public_id for slot in await slots_find(type_code="sick_visit", limit=400)}
    assert schedule.slots[0] in free
    assert schedule.slots[1] not in free
    assert await AuditEvent.exists().where(AuditEvent.action == "visits.reschedule")


async def test_cancelling_online_closes_the_type_s_hours_before_the_start() -> None:
    # A follow-up may be cancelled online until 24 hours before (a recall lets a new
    # patient book one).
    schedule = await make_schedule(hours_from_now(10, 30), code="follow_up")
    person = await make_person()
    from app.tables import CareRecall
    from tests.factories import appointment_type

    await CareRecall.insert(
        CareRecall(
            patient=person.patient.id,
            appointment_type=await appointment_type("follow_up"),
            due_on=datetime.now(UTC).date(),
        )
    )
    soon = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    with pytest.raises(LateChangeError) as late:
        await appointment_cancel(await person.context(), visit_public_id=soon.public_id)
    assert late.value.visit.location_phone  # the page shows the number to call
    assert late.value.visit.cancel_hours == 24

    later = await make_schedule(hours_from_now(60), code="sick_visit")
    visit = await appointment_book(await person.context(), slot_public_id=later.slots[0])
    await appointment_cancel(
        await person.context(), visit_public_id=visit.public_id, reason="feel_better"
    )
    row = await Appointment.select(Appointment.status, Appointment.cancel_reason).where(
        Appointment.public_id == visit.public_id
    )
    assert row == [{"status": "cancelled", "cancel_reason": "feel_better"}]
    assert await AuditEvent.exists().where(
        AuditEvent.action == "visits.cancel", AuditEvent.resource_id == visit.public_id
    )


async def test_a_caregiver_books_for_the_record_within_the_appointments_scope() -> None:
    schedule = await make_schedule(hours_from_now(40, 41))
    parent = await make_person("Parent")
    child = await make_person("Kid", birth=years_ago(7))
    await grant(parent.account, child.patient, kind="proxy", relationship="parent")
    for_child = await parent.context(acting_patient_id=child.patient.id)
    assert for_child.patient.id == child.patient.id

    booked = await appointment_book(for_child, slot_public_id=schedule.slots[0])

    row = await Appointment.select(Appointment.patient).where(
        Appointment.public_id == booked.public_id
    )
    assert row == [{"patient": child.patient.id}]
    bills_only = await make_account("Bills Only")
    await grant(bills_only, child.patient, kind="proxy", scope="billing", relationship="friend")
    from tests.factories import Person

    context = await Person(bills_only, child.patient).context(acting_patient_id=child.patient.id)
    with pytest.raises(NotPermittedError):
        await appointment_book(context, slot_public_id=schedule.slots[1])


async def test_a_visit_of_another_record_cannot_be_changed() -> None:
    schedule = await make_schedule(hours_from_now(70))
    owner, other = await make_person(), await make_person("Other")
    visit = await appointment_book(await owner.context(), slot_public_id=schedule.slots[0])
    with pytest.raises(NotFoundError):
        await appointment_cancel(await other.context(), visit_public_id=visit.public_id)


async def test_a_time_too_close_to_reach_is_never_offered_or_booked() -> None:
    schedule = await make_schedule(hours_from_now(0.25))
    with pytest.raises(JustTakenError):
        await appointment_book(
            await (await make_person()).context(), slot_public_id=schedule.slots[0]
        )


async def test_the_visits_list_shows_a_booked_visit_and_past_shows_a_cancelled_one() -> None:
    schedule = await make_schedule(hours_from_now(80, 90))
    person = await make_person()
    context = await person.context()
    keep = await appointment_book(context, slot_public_id=schedule.slots[0])
    drop = await appointment_book(context, slot_public_id=schedule.slots[1])
    await appointment_cancel(context, visit_public_id=drop.public_id)
    upcoming, _ = await visits_list(context, past=False)
    past, _ = await visits_list(context, past=True)
    assert [visit.public_id for visit in upcoming] == [keep.public_id]
    assert [visit.public_id for visit in past] == [drop.public_id]
    assert upcoming[0].starts_at - datetime.now(UTC) > timedelta(hours=70)


async def test_a_teenager_s_own_booking_is_theirs_alone() -> None:
    """Like their conversations: a visit a teenager books for themself is confidential, so a
    guardian sees it nowhere; one the guardian books for them is not."""
    schedule = await make_schedule(hours_from_now(60, 62))
    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_person("Parent")
    await grant(parent.account, teen.patient, kind="proxy", scope="full", relationship="parent")

    own = await appointment_book(await teen.context(), slot_public_id=schedule.slots[0])
    guardian = await parent.context(acting_patient_id=teen.patient.id)
    by_parent = await appointment_book(guardian, slot_public_id=schedule.slots[1])

    rows = await Appointment.select(Appointment.public_id, Appointment.confidential).where(
        Appointment.patient == teen.patient.id
    )
    assert {row["public_id"]: row["confidential"] for row in rows} == {
        own.public_id: True,
        by_parent.public_id: False,
    }
    upcoming, _ = await visits_list(guardian, past=False)
    assert [visit.public_id for visit in upcoming] == [by_parent.public_id]
    with pytest.raises(NotFoundError):
        await appointment_cancel(guardian, visit_public_id=own.public_id)
    mine, _ = await visits_list(await teen.context(), past=False)
    assert {visit.public_id for visit in mine} == {own.public_id, by_parent.public_id}
