"""The clinic's queue: pools by role, one owner at a time, overdue in business hours, replies
that reach the patient with nothing of their content, times recorded, every step audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.access import StaffActor
from app.clinic import ClinicProfile, clinic_profile, clinic_profile_set
from app.clock import set_clock
from app.errors import NotFoundError, NotPermittedError
from app.services.messages.queue import (
    QueueError,
    queue_assign,
    queue_claim,
    queue_close,
    queue_document,
    queue_list,
    queue_note,
    queue_reopen,
    queue_reply,
    queue_thread_open,
    refill_decide,
)
from app.services.messages.sending import Draft, message_send
from app.services.messages.targets import business_calendar, deadlines
from app.services.messages.templates import (
    TemplateError,
    template_remove,
    template_render,
    template_save,
    templates_for,
)
from app.services.messages.threads import thread_open
from app.tables import (
    Account,
    AuditEvent,
    ClinicHoliday,
    ClinicHours,
    Clinician,
    Conversation,
    OutboxMessage,
    Patient,
    RefillRequest,
)
from tests.factories import (
    Person,
    grant,
    make_account,
    make_clinician,
    make_person,
    make_reachable_person,
    make_staff,
    make_thread,
    phone_number,
    staff_actor_for,
    unique,
    with_contacts,
    years_ago,
)

ZONE = ZoneInfo("America/New_York")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def _patient_with_phone(given: str = "Pat") -> tuple[Person, str]:
    person, phone, _email = await make_reachable_person(given)
    return person, phone


async def _audited(action: str, resource_id: str) -> int:
    return await AuditEvent.count().where(
        AuditEvent.action == action, AuditEvent.resource_id == resource_id
    )


async def test_two_staff_claiming_at_once_one_wins_and_the_other_is_told_who() -> None:
    person = await make_person("Claire")
    thread = await make_thread(person.patient)
    first, second = await make_staff("nurse"), await make_staff("nurse")
    results = await asyncio.gather(
        queue_claim(staff=staff_actor_for(first), public_id=thread.public_id),
        queue_claim(staff=staff_actor_for(second), public_id=thread.public_id),
        return_exceptions=True,
    )
    refused = [result for result in results if isinstance(result, QueueError)]
    assert len(refused) == 1
    assert refused[0].reason == "claimed"
    row = await Conversation.objects().where(Conversation.id == thread.id).first()
    assert row is not None
    winner = first if row.assigned_staff == first.id else second
    assert refused[0].holder == f"{winner.given_name} {winner.family_name}"
    assert await _audited("messages.claim", thread.public_id) == 1
    # Claiming what is already yours is no error.
    await queue_claim(staff=staff_actor_for(winner), public_id=thread.public_id)


async def test_each_role_sees_the_pools_it_answers_and_no_other() -> None:
    person = await make_person("Poole")
    clinical = await make_thread(person.patient, topic="question", pool="clinical")
    billing = await make_thread(person.patient, topic="billing", pool="billing")
    desk = staff_actor_for(await make_staff("front_desk"))
    nurse = staff_actor_for(await make_staff("nurse"))
    biller = staff_actor_for(await make_staff("billing"))
    nurse_sees = {line.public_id for line in (await queue_list(staff=nurse)).lines}
    assert clinical.public_id in nurse_sees
    assert billing.public_id not in nurse_sees
    biller_sees = {line.public_id for line in (await queue_list(staff=biller)).lines}
    assert billing.public_id in biller_sees
    assert clinical.public_id not in biller_sees
    with pytest.raises(NotPermittedError):
        await queue_thread_open(staff=desk, public_id=clinical.public_id)
    with pytest.raises(NotFoundError):
        await queue_thread_open(staff=nurse, public_id="no-such-thread")
    # Each patient a list showed is in their access history.
    assert await AuditEvent.exists().where(
        AuditEvent.action == "messages.queue_view",
        AuditEvent.actor_staff == nurse.staff_id,
        AuditEvent.patient == person.patient.id,
    )


async def test_a_reply_reaches_the_patient_as_a_notice_without_its_content() -> None:
    person, phone = await _patient_with_phone("Noor")
    sent = await message_send(
        await person.context(), draft=Draft(topic="question", body="My knee hurts.")
    )
    nurse = staff_actor_for(await make_staff("nurse"))
    await queue_reply(staff=nurse, public_id=sent.thread_id, body="Ice it and rest, Noor.")
    notices = await OutboxMessage.select(OutboxMessage.body, OutboxMessage.subject).where(
        OutboxMessage.recipient == phone
    )
    assert len(notices) == 1
    text = notices[0]["body"]
    assert text == (
        f"You have a new message from {clinic_profile().name}. Open the patient portal to see it."
    )
    assert "knee" not in text
    assert "Noor" not in text
    assert "Ice" not in text
    thread = await thread_open(await person.context(), sent.thread_id)
    assert thread.messages[-1].sender == "clinic"
    assert thread.expected_by is None  # nothing is owed any more
    assert await _audited("messages.staff_reply", sent.thread_id) == 1


async def test_a_confidential_reply_is_announced_to_the_patient_alone() -> None:
    teen, phone = await _patient_with_phone("Teo")
    await Patient.update({Patient.birth_date: years_ago(15)}).where(Patient.id == teen.patient.id)
    # The phone is marked as the teenager's own: a family phone would be told nothing.
    await with_contacts(teen.patient, phone=phone, phone_is_own=True)
    parent = await make_account("Pia Parent")
    parent_phone = phone_number()
    await Account.update({Account.phone: parent_phone}).where(Account.id == parent.id)
    await grant(parent, teen.patient, kind="proxy", scope="full", relationship="parent")
    thread = await make_thread(teen.patient, confidential=True)
    await queue_reply(
        staff=staff_actor_for(await make_staff("nurse")), public_id=thread.public_id, body="Yes."
    )
    # The teenager's own account hears of it (no device for a push: a text); the parent not.
    assert await OutboxMessage.count().where(OutboxMessage.recipient == phone) == 1
    assert await OutboxMessage.count().where(OutboxMessage.recipient == parent_phone) == 0


async def test_first_response_and_resolution_times_are_recorded_in_both_clocks() -> None:
    person = await make_person("Tim")
    asked = local(2026, 12, 24, 15)  # Thursday before Christmas, two hours before closing
    await ClinicHoliday.insert(ClinicHoliday(day=date(2026, 12, 25), name="Christmas Day"))
    try:
        set_clock(lambda: asked)
        sent = await message_send(await person.context(), draft=Draft(topic="question", body="?"))
        answered = local(2026, 12, 28, 9)  # Monday: two hours Thursday, one hour Monday
        set_clock(lambda: answered)
        nurse = staff_actor_for(await make_staff("nurse"))
        await queue_reply(staff=nurse, public_id=sent.thread_id, body="Answer.")
        closed = local(2026, 12, 28, 10)
        set_clock(lambda: closed)
        await queue_close(staff=nurse, public_id=sent.thread_id)
    finally:
        await ClinicHoliday.delete().where(ClinicHoliday.day == date(2026, 12, 25))
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert row.first_response_at == answered
    assert row.first_response_minutes == int((answered - asked).total_seconds() // 60)
    assert row.first_response_business_minutes == 180
    assert row.resolved_at == closed
    assert row.resolution_business_minutes == 240
    assert row.status == "closed"
    assert row.assigned_staff == nurse.staff_id  # the one who answered owns it


async def test_overdue_is_reckoned_in_business_hours_across_a_weekend_and_a_holiday() -> None:
    person = await make_person("Otto")
    nurse = staff_actor_for(await make_staff("nurse"))
    await ClinicHoliday.insert(ClinicHoliday(day=date(2026, 12, 25), name="Christmas Day"))
    try:
        set_clock(lambda: local(2026, 12, 24, 15))  # a 4-hour target: due Monday 10:00
        sent = await message_send(await person.context(), draft=Draft(topic="question", body="?"))
        for moment, state in (
            (local(2026, 12, 24, 16), "waiting"),
            (local(2026, 12, 26, 12), "waiting"),  # Saturday: four calendar days would not count
            (local(2026, 12, 28, 9), "soon"),  # three of its four hours used
            (local(2026, 12, 28, 10), "overdue"),
        ):
            set_clock(lambda moment=moment: moment)
            assert await _state(nurse, sent.thread_id) == state, moment
    finally:
        await ClinicHoliday.delete().where(ClinicHoliday.day == date(2026, 12, 25))


async def _state(staff: StaffActor, public_id: str) -> str:
    queue = await queue_list(staff=staff)
    return next(line.state for line in queue.lines if line.public_id == public_id)


async def test_the_morning_view_lists_what_came_in_since_the_last_close() -> None:
    person = await make_person("Mo")
    nurse = staff_actor_for(await make_staff("nurse"))
    set_clock(lambda: local(2026, 12, 10, 16))  # Thursday afternoon
    before = await message_send(await person.context(), draft=Draft(topic="question", body="a"))
    set_clock(lambda: local(2026, 12, 10, 22))  # Thursday night
    overnight = await message_send(await person.context(), draft=Draft(topic="question", body="b"))
    set_clock(lambda: local(2026, 12, 11, 8, 30))  # Friday morning
    morning = {line.public_id for line in (await queue_list(staff=nurse, view="morning")).lines}
    assert overnight.thread_id in morning
    assert before.thread_id not in morning
    # End of Friday: both are due before Monday's opening, so both are on the evening list.
    set_clock(lambda: local(2026, 12, 11, 16, 30))
    evening = await queue_list(staff=nurse, view="evening")
    assert {before.thread_id, overnight.thread_id} <= {line.public_id for line in evening.lines}
    assert evening.until == local(2026, 12, 14, 8)


async def test_assigning_needs_a_colleague_who_answers_the_pool() -> None:
    person = await make_person("Asa")
    thread = await make_thread(person.patient)
    nurse = staff_actor_for(await make_staff("nurse"))
    clinician = await make_staff("clinician")
    desk = await make_staff("front_desk")
    await queue_assign(staff=nurse, public_id=thread.public_id, to=clinician.public_id)
    mine = await queue_list(staff=staff_actor_for(clinician), view="mine")
    assert thread.public_id in {line.public_id for line in mine.lines}
    with pytest.raises(QueueError) as refused:
        await queue_assign(staff=nurse, public_id=thread.public_id, to=desk.public_id)
    assert refused.value.reason == "colleague"
    await queue_assign(staff=nurse, public_id=thread.public_id, to="")
    row = await Conversation.objects().where(Conversation.id == thread.id).first()
    assert row is not None
    assert row.assigned_staff is None
    assert await _audited("messages.assign", thread.public_id) == 1
    assert await _audited("messages.unassign", thread.public_id) == 1


async def test_internal_notes_never_reach_the_patient() -> None:
    person = await make_person("Nell")
    sent = await message_send(await person.context(), draft=Draft(topic="question", body="Hi"))
    nurse = staff_actor_for(await make_staff("nurse"))
    await queue_note(staff=nurse, public_id=sent.thread_id, body="Call her pharmacy first.")
    staff_view = await queue_thread_open(staff=nurse, public_id=sent.thread_id)
    assert [note.body for note in staff_view.notes] == ["Call her pharmacy first."]
    patient_view = await thread_open(await person.context(), sent.thread_id)
    assert all("pharmacy" not in message.body for message in patient_view.messages)
    assert await _audited("messages.note", sent.thread_id) == 1
    assert await _audited("messages.staff_view", sent.thread_id) == 1
    with pytest.raises(QueueError):
        await queue_note(staff=nurse, public_id=sent.thread_id, body="   ")


async def test_a_refill_reaches_the_prescriber_and_the_decision_reaches_the_patient() -> None:
    person, phone = await _patient_with_phone("Ray")
    clinician_id = await make_clinician()
    clinician_staff = await make_staff("clinician", clinician=clinician_id)
    await Patient.update({Patient.primary_clinician: clinician_id}).where(
        Patient.id == person.patient.id
    )
    sent = await message_send(
        await person.context(),
        draft=Draft(
            topic="refill", typed_medications="Lisinopril 10 mg\nMetformin", pharmacy="CVS"
        ),
    )
    prescriber = staff_actor_for(clinician_staff)
    mine = await queue_list(staff=prescriber, view="mine")
    assert sent.thread_id in {line.public_id for line in mine.lines}
    refills = await RefillRequest.select(RefillRequest.public_id, RefillRequest.medication).where(
        RefillRequest.conversation.public_id == sent.thread_id
    )
    first, second = refills[0]["public_id"], refills[1]["public_id"]
    nurse = staff_actor_for(await make_staff("nurse"))
    with pytest.raises(NotPermittedError):  # a nurse sees refills but the prescriber decides
        await refill_decide(
            staff=nurse, public_id=sent.thread_id, refill_id=first, approve=True, note="ok"
        )
    with pytest.raises(QueueError) as refused:
        await refill_decide(
            staff=prescriber, public_id=sent.thread_id, refill_id=second, approve=False, note=" "
        )
    assert refused.value.reason == "reason"
    await refill_decide(
        staff=prescriber,
        public_id=sent.thread_id,
        refill_id=first,
        approve=True,
        note="Sent to CVS.",
    )
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert row.waiting_since is not None  # one medicine still waits for a decision
    assert row.first_response_at is not None
    await refill_decide(
        staff=prescriber,
        public_id=sent.thread_id,
        refill_id=second,
        approve=False,
        note="We need to see you before refilling this.",
    )
    with pytest.raises(QueueError) as again:
        await refill_decide(
            staff=prescriber, public_id=sent.thread_id, refill_id=second, approve=True, note="x"
        )
    assert again.value.reason == "decided"
    thread = await thread_open(await person.context(), sent.thread_id)
    assert [(r.medication, r.status) for r in thread.refills] == [
        ("Lisinopril 10 mg", "approved"),
        ("Metformin", "denied"),
    ]
    assert thread.expected_by is None
    notices = await OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == phone)
    assert notices
    assert all("Lisinopril" not in row["body"] for row in notices)
    assert await _audited("messages.refill_approved", sent.thread_id) == 1
    assert await _audited("messages.refill_denied", sent.thread_id) == 1


async def test_only_a_clinician_marks_a_conversation_documented() -> None:
    person = await make_person("Doc")
    thread = await make_thread(person.patient)
    with pytest.raises(NotPermittedError):
        await queue_document(
            staff=staff_actor_for(await make_staff("nurse")), public_id=thread.public_id, note="x"
        )
    clinician = staff_actor_for(await make_staff("clinician"))
    await queue_document(staff=clinician, public_id=thread.public_id, note="Advised rest.")
    view = await queue_thread_open(staff=clinician, public_id=thread.public_id)
    assert view.documented_note == "Advised rest."
    assert view.documented_by == clinician.display_name
    assert await _audited("messages.documented", thread.public_id) == 1


async def test_closing_and_reopening_put_it_back_in_the_queue() -> None:
    person = await make_person("Rex")
    thread = await make_thread(person.patient)
    nurse = staff_actor_for(await make_staff("nurse"))
    await queue_close(staff=nurse, public_id=thread.public_id)
    waiting = {line.public_id for line in (await queue_list(staff=nurse)).lines}
    assert thread.public_id not in waiting
    await queue_reopen(staff=nurse, public_id=thread.public_id)
    waiting = {line.public_id for line in (await queue_list(staff=nurse)).lines}
    assert thread.public_id in waiting
    assert await _audited("messages.close", thread.public_id) == 1
    assert await _audited("messages.reopen", thread.public_id) == 1


async def test_templates_fill_in_their_placeholders_and_only_admins_keep_them() -> None:
    admin = staff_actor_for(await make_staff("admin"))
    with pytest.raises(NotPermittedError):
        await template_save(
            staff=staff_actor_for(await make_staff("nurse")),
            public_id=None,
            title="x",
            body="y",
            topic="",
        )
    with pytest.raises(TemplateError) as refused:
        await template_save(
            staff=admin, public_id=None, title="Bad", body="Hi {ssn}", topic="question"
        )
    assert refused.value.reason == "body"
    title = unique("Thanks ")
    public_id = await template_save(
        staff=admin,
        public_id=None,
        title=title,
        body="Hi {first_name}, call {clinic_phone}. {first_name.__class__}",
        topic="question",
    )
    assert title in {line.title for line in await templates_for("question")}
    assert title not in {line.title for line in await templates_for("billing")}
    person = await make_person("Ines")
    thread = await make_thread(person.patient)
    saved = clinic_profile()
    clinic_profile_set(
        ClinicProfile(name="Riverside", phone="(555) 010-0100", timezone=ZONE, locations=())
    )
    try:
        view = await queue_thread_open(
            staff=staff_actor_for(await make_staff("nurse")),
            public_id=thread.public_id,
            template=public_id,
        )
    finally:
        clinic_profile_set(saved)
    assert view.draft == "Hi Ines, call (555) 010-0100. {first_name.__class__}"
    assert template_render("{staff_name} {unknown}", {"staff_name": "Sam"}) == "Sam {unknown}"
    await template_remove(staff=admin, public_id=public_id)
    assert title not in {line.title for line in await templates_for("question")}


async def test_hours_of_a_location_change_its_due_times() -> None:
    """A location open on Saturday mornings counts them; the rest of the clinic does not."""
    clinician = await make_clinician()
    location = (await Clinician.select(Clinician.location).where(Clinician.id == clinician))[0][
        "location"
    ]
    await ClinicHours.insert(
        ClinicHours(location=location, weekday=5, opens=9 * 60, closes=13 * 60)
    )
    try:
        friday_evening = local(2026, 12, 11, 18)
        own = deadlines(await business_calendar(location), "question", friday_evening)
        shared = deadlines(await business_calendar(None), "question", friday_evening)
        assert own.due_at == local(2026, 12, 12, 13)
        assert shared.due_at == local(2026, 12, 14, 12)
    finally:
        await ClinicHours.delete().where(ClinicHours.location == location)
