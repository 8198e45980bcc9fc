"""Visits over HTTP, as a browser without JavaScript: the suggested visit booked in two taps
from home, "Just taken" with real alternatives, a late cancellation that shows the number to
call, a parent booking for a child, and the clinic's day view seeing the change at once."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from httpx import AsyncClient

from app.services.visits.booking import MAX_UPCOMING_ONLINE, appointment_book
from app.tables import Appointment, AuditEvent, CareRecall, Location, Patient
from tests.factories import (
    appointment_type,
    grant,
    hours_from_now,
    make_person,
    make_schedule,
    years_ago,
)
from tests.web.conftest import csrf_from, flashed, sign_in, staff_signed_in


async def test_the_suggested_visit_is_booked_in_two_taps_from_home(client: AsyncClient) -> None:
    schedule = await make_schedule(hours_from_now(60, 61), code="follow_up")
    person = await make_person()
    await CareRecall.insert(
        CareRecall(
            patient=person.patient.id,
            appointment_type=await appointment_type("follow_up"),
            clinician=schedule.clinician_id,
            due_on=date.today() + timedelta(days=7),
        )
    )
    await sign_in(client, person)
    home = await client.get("/home")
    book = re.search(r'href="(/visits/book/[^"]+)"', home.text)
    assert book is not None
    assert book.group(1) == f"/visits/book/{schedule.slots[0]}"

    confirm = await client.get(book.group(1))  # tap 1: Book
    assert confirm.status_code == 200
    assert "Book this visit?" in confirm.text
    booked = await client.post(  # tap 2: Confirm
        book.group(1), data={"_csrf_token": csrf_from(confirm.text)}, follow_redirects=False
    )

    assert booked.status_code == 303
    visit_path = booked.headers["location"]
    assert "?" not in visit_path  # what happened is flashed, not put in the address
    assert flashed(booked) == "visit_booked"
    page = await client.get(visit_path)
    assert '<p id="notice" class="notice" role="status">Your visit is booked.</p>' in page.text
    assert f'href="{visit_path}/calendar.ics"' in page.text
    home = await client.get("/home")
    assert f'href="{visit_path}"' in home.text  # home's next visit


async def test_a_taken_slot_answers_just_taken_with_the_next_times(client: AsyncClient) -> None:
    schedule = await make_schedule(hours_from_now(50, 51, 52))
    first, second = await make_person(), await make_person("Late")
    await sign_in(client, first)
    page = await client.get(f"/visits/book/{schedule.slots[0]}")
    token = csrf_from(page.text)
    await client.post(f"/visits/book/{schedule.slots[0]}", data={"_csrf_token": token})
    await sign_in(client, second)

    taken = await client.post(
        f"/visits/book/{schedule.slots[0]}", data={"_csrf_token": token}, follow_redirects=False
    )

    assert taken.status_code == 409
    assert "Just taken — here are the next times" in taken.text
    assert f"/visits/book/{schedule.slots[1]}" in taken.text
    assert f"/visits/book/{schedule.slots[0]}" not in taken.text


async def test_past_the_online_limit_book_says_to_call_with_a_phone_link(
    client: AsyncClient,
) -> None:
    hours = [40 + n for n in range(MAX_UPCOMING_ONLINE + 1)]
    schedule = await make_schedule(hours_from_now(*hours))
    person = await make_person()
    context = await person.context()
    for slot in schedule.slots[:MAX_UPCOMING_ONLINE]:
        await appointment_book(context, slot_public_id=slot)
    await sign_in(client, person)

    page = await client.get(f"/visits/book/{schedule.slots[-1]}")

    assert page.status_code == 409
    assert f"You already have {MAX_UPCOMING_ONLINE} upcoming visits booked online." in page.text
    assert 'href="tel:' in page.text
    assert "Book this visit?" not in page.text


async def test_a_late_cancellation_shows_the_policy_and_a_phone_link(client: AsyncClient) -> None:
    schedule = await make_schedule(hours_from_now(1.5))
    person = await make_person()
    await sign_in(client, person)
    page = await client.get(f"/visits/book/{schedule.slots[0]}")
    booked = await client.post(
        f"/visits/book/{schedule.slots[0]}", data={"_csrf_token": csrf_from(page.text)}
    )
    visit_path = booked.headers["location"].split("?")[0]

    late = await client.get(f"{visit_path}/cancel")

    assert late.status_code == 409
    assert "cannot be changed online" in late.text
    assert 'href="tel:5550000001"' in late.text  # the location's number, digits only
    still = await Appointment.select(Appointment.status).where(
        Appointment.public_id == visit_path.rsplit("/", 1)[1]
    )
    assert still == [{"status": "booked"}]


async def test_the_change_pages_are_audited_as_looks_at_the_visit(client: AsyncClient) -> None:
    """They show the visit's day, kind and clinician: a caregiver opening them must show up in
    the patient's access history like one opening the visit itself."""
    schedule = await make_schedule(hours_from_now(50, 52))
    person = await make_person()
    visit = await appointment_book(await person.context(), slot_public_id=schedule.slots[0])
    await sign_in(client, person)
    for path in (
        f"/visits/{visit.public_id}/cancel",
        f"/visits/{visit.public_id}/reschedule",
        f"/visits/{visit.public_id}/reschedule/{schedule.slots[1]}",
    ):
        before = await AuditEvent.count().where(AuditEvent.patient == person.patient.id)
        assert (await client.get(path)).status_code == 200, path
        after = await AuditEvent.count().where(
            AuditEvent.patient == person.patient.id,
            AuditEvent.action == "visits.view",
            AuditEvent.resource_id == visit.public_id,
        )
        assert await AuditEvent.count().where(AuditEvent.patient == person.patient.id) > before
        assert after >= 1, path


async def test_a_date_far_off_in_the_console_is_refused_not_an_error(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client, role="front_desk")
    for far in ("9999-12-31", "0001-01-01"):
        page = await client.get("/staff/scheduling", params={"on": far})
        assert page.status_code == 200  # today's page instead
    await staff_signed_in(client, role="admin")
    page = await client.get("/staff/scheduling/inventory")
    blocked = await client.post(
        "/staff/scheduling/blocks",
        data={
            "_csrf_token": csrf_from(page.text),
            "start_day": "9999-12-30",
            "start_time": "",
            "end_day": "9999-12-31",
            "end_time": "",
            "reason": "typo",
        },
    )
    assert blocked.status_code == 400


async def test_a_parent_books_for_a_child_and_the_visit_is_the_child_s(
    client: AsyncClient,
) -> None:
    start = hours_from_now(80)
    schedule = await make_schedule(start, code="well_child", minutes=30)
    parent = await make_person("Parent")
    child = await make_person("Kid", birth=years_ago(6))
    await grant(parent.account, child.patient, kind="proxy", relationship="parent")
    await sign_in(client, parent, acting_patient_id=child.patient.id)
    day = start[0].astimezone(ZoneInfo("America/New_York")).date().isoformat()
    times = await client.get("/visits/new/well_child", params={"day": day})
    assert times.status_code == 200
    assert f"/visits/book/{schedule.slots[0]}" in times.text
    page = await client.get(f"/visits/book/{schedule.slots[0]}")
    assert "For Kid." in page.text

    await client.post(
        f"/visits/book/{schedule.slots[0]}", data={"_csrf_token": csrf_from(page.text)}
    )

    rows = await Appointment.select(Appointment.patient, Appointment.channel).where(
        Appointment.clinician == schedule.clinician_id
    )
    assert rows == [{"patient": child.patient.id, "channel": "portal"}]


async def test_the_front_desk_sees_a_portal_booking_and_its_confirmation_at_once(
    client: AsyncClient,
) -> None:
    schedule = await make_schedule(hours_from_now(30))
    person = await make_person("Seen")
    await sign_in(client, person)
    page = await client.get(f"/visits/book/{schedule.slots[0]}")
    booked = await client.post(
        f"/visits/book/{schedule.slots[0]}", data={"_csrf_token": csrf_from(page.text)}
    )
    visit_path = booked.headers["location"].split("?")[0]
    await client.post(f"{visit_path}/confirm", data={"_csrf_token": csrf_from(page.text)})
    starts = await Appointment.select(Appointment.starts_at).where(
        Appointment.public_id == visit_path.rsplit("/", 1)[1]
    )
    day = starts[0]["starts_at"].astimezone(ZoneInfo("America/New_York"))

    await staff_signed_in(client, role="front_desk")
    view = await client.get("/staff/scheduling", params={"on": day.date().isoformat()})

    assert view.status_code == 200
    family = (await Patient.select(Patient.family_name).where(Patient.id == person.patient.id))[0]
    row = re.search(rf"Seen {family['family_name']}.*?</li>", view.text, re.S)
    assert row is not None
    assert "Confirmed" in row.group(0)
    assert "Booked in the portal" in row.group(0)


async def test_the_filters_say_what_they_found_in_a_line_that_stays_put(
    client: AsyncClient,
) -> None:
    """Who/Where, sent by "Show times" without JavaScript or through htmx, come back with one
    short status line. htmx swaps the times (#times) and only the words of that line, so the
    line, a live region, stays in the page and a screen reader says it."""
    day = date.today() + timedelta(days=3)
    three_pm = datetime.combine(day, time(15), tzinfo=ZoneInfo("America/New_York"))
    schedule = await make_schedule([three_pm + timedelta(minutes=m) for m in (0, 20, 40)])
    place = await Location.select(Location.public_id, Location.name).where(
        Location.id == schedule.location_id
    )
    await sign_in(client, await make_person())
    chosen = {"clinician": "", "location": place[0]["public_id"]}
    said = re.compile(
        r'<p id="times-status" role="status" class="small">3 free times on \w+day, [^<]+, at '
        + re.escape(place[0]["name"])
        + "</p>"
    )

    whole = await client.get("/visits/new/sick_visit", params=chosen)  # "Show times"
    assert whole.status_code == 200
    assert said.search(whole.text)
    assert "<h1>" in whole.text

    swapped = await client.get(
        "/visits/new/sick_visit",
        params=chosen,
        headers={"HX-Request": "true", "HX-Target": "times"},
    )
    assert swapped.status_code == 200
    assert "<h1>" not in swapped.text
    assert said.search(swapped.text)
    form = re.search(r'<form id="times-filters"[^>]*>', swapped.text)
    assert form is not None
    assert 'hx-target="#times" hx-select="#times"' in form.group(0)
    assert 'hx-select-oob="#times-filters,#times-status:innerHTML"' in form.group(0)
    # The line is outside what is swapped whole, and the times are in no live region.
    times = swapped.text[swapped.text.index('<div id="times">') :]
    assert "times-status" not in times
    assert "aria-live" not in times
    assert 'role="status"' not in times
