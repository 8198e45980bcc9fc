"""What home and Visits offer: the next visit the care team wants, with a real free time; and
a visit's calendar file, which a calendar library reads back as the same visit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar

from app.services.home import home_summary
from app.services.visits import visit_open
from app.services.visits.booking import appointment_book
from app.services.visits.ics import visit_ics
from app.tables import Appointment, CareRecall, Patient
from tests.factories import appointment_type, hours_from_now, make_person, make_schedule


async def test_a_follow_up_the_clinician_asked_for_is_offered_with_their_first_free_time() -> None:
    schedule = await make_schedule(hours_from_now(30, 60, 61), code="follow_up")
    person = await make_person()
    await CareRecall.insert(
        CareRecall(
            patient=person.patient.id,
            appointment_type=await appointment_type("follow_up"),
            clinician=schedule.clinician_id,
            reason="follow_up",
            due_on=date.today() + timedelta(days=10),
        )
    )
    summary = await home_summary(await person.context())
    assert summary.suggestion is not None
    assert summary.suggestion.reason == "follow_up"
    # Two days out at the earliest (time to plan, and to change it online).
    assert summary.suggestion.slot.public_id == schedule.slots[1]

    await appointment_book(await person.context(), slot_public_id=schedule.slots[1])
    after = await home_summary(await person.context())
    assert after.next_visit is not None
    assert after.suggestion is None or after.suggestion.reason != "follow_up"


async def test_a_yearly_checkup_is_offered_only_when_none_was_had_in_a_year() -> None:
    schedule = await make_schedule(hours_from_now(72, 73), code="annual_physical", minutes=30)
    person = await make_person()
    await Patient.update({Patient.primary_clinician: schedule.clinician_id}).where(
        Patient.id == person.patient.id
    )
    summary = await home_summary(await person.context())
    assert summary.suggestion is not None
    assert (summary.suggestion.reason, summary.suggestion.slot.public_id) == (
        "yearly",
        schedule.slots[0],
    )

    done = datetime.now(UTC) - timedelta(days=100)
    await Appointment.insert(
        Appointment(
            patient=person.patient.id,
            clinician=schedule.clinician_id,
            location=schedule.location_id,
            starts_at=done,
            ends_at=done + timedelta(minutes=30),
            visit_type="annual_physical",
            status="fulfilled",
        )
    )
    assert (await home_summary(await person.context())).suggestion is None


async def test_the_calendar_file_parses_back_as_the_same_visit() -> None:
    schedule = await make_schedule(hours_from_now(50))
    person = await make_person()
    booked = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    visit = await visit_open(await person.context(), booked.public_id)

    calendar = Calendar.from_ical(visit_ics(visit, title="Sick visit", clinic_name="Clinic"))

    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert event.decoded("dtstart") == visit.starts_at
    assert event.decoded("dtend") == visit.ends_at
    assert str(event["uid"]).startswith(booked.public_id + "@")
    assert str(event["summary"]) == "Sick visit · Clinic"
    assert str(event["location"]) == f"{visit.location_name}, {visit.location_address}"
