"""Writing to the care team through the patient context: caregivers write as themselves,
teenagers' conversations stay theirs, a refused message writes nothing, and every message
starts the clinic's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.access import patient_context_resolve
from app.errors import NotFoundError, NotPermittedError
from app.services.messages.attachments import AttachmentError, Upload
from app.services.messages.refills import MedicationChoice, medications_chosen
from app.services.messages.sending import (
    FILES_PER_ACCOUNT,
    MESSAGES_PER_ACCOUNT,
    Draft,
    MessageError,
    message_reply,
    message_send,
)
from app.services.messages.threads import attachment_for, conversations_list, thread_open
from app.tables import AuditEvent, Conversation, Message, MessageAttachment, Patient, RefillRequest
from tests.factories import (
    PDF_BYTES,
    actor_for,
    grant,
    make_account,
    make_clinician,
    make_person,
    photo_with_location,
    years_ago,
)


async def test_a_caregiver_writes_as_themself_for_the_patient() -> None:
    walter = await make_person("Walter", birth=years_ago(82))
    david = await make_account("David Chen")
    await grant(david, walter.patient, kind="proxy", scope="full", relationship="child")
    context = await walter.context()  # the patient's own view, to read it back later
    helper = await patient_context_resolve(actor_for(david, acting_patient_id=walter.patient.id))
    assert helper is not None
    sent = await message_send(helper, draft=Draft(topic="question", body="Dad is dizzy."))
    message = (
        await Message.objects().where(Message.conversation.public_id == sent.thread_id).first()
    )
    assert message is not None
    assert (message.author_account, message.author_name) == (david.id, "David Chen")
    assert (message.on_behalf, message.author_relationship) == (True, "child")
    thread = await thread_open(context, sent.thread_id)
    assert thread.messages[0].on_behalf
    assert thread.messages[0].author_name == "David Chen"
    assert not thread.confidential  # a caregiver never starts a private conversation


async def test_a_teenager_s_own_conversation_is_for_them_alone() -> None:
    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_account("Maria Parent")
    await grant(parent, teen.patient, kind="proxy", scope="full", relationship="parent")
    sent = await message_send(await teen.context(), draft=Draft(topic="question", body="Private."))
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert row.confidential
    guardian = await patient_context_resolve(actor_for(parent, acting_patient_id=teen.patient.id))
    assert guardian is not None
    assert not guardian.may("messages")  # from 12 the guardian keeps no messages at all
    with pytest.raises(NotFoundError):
        await thread_open(guardian, sent.thread_id)
    with pytest.raises(NotPermittedError):
        await conversations_list(guardian)


async def test_an_adult_may_keep_a_conversation_from_a_caregiver_with_the_messages_scope() -> None:
    adult = await make_person("Ada")
    helper = await make_account("Helper")
    await grant(helper, adult.patient, kind="proxy", scope="messages", relationship="friend")
    private = await message_send(
        await adult.context(), draft=Draft(topic="other", body="Just me.", private=True)
    )
    shared = await message_send(await adult.context(), draft=Draft(topic="other", body="Both."))
    caregiver = await patient_context_resolve(actor_for(helper, acting_patient_id=adult.patient.id))
    assert caregiver is not None
    listed = {line.public_id for line in await conversations_list(caregiver)}
    assert listed == {shared.thread_id}
    with pytest.raises(NotFoundError):
        await thread_open(caregiver, private.thread_id)


async def test_another_patient_cannot_open_a_thread_or_its_attachment() -> None:
    owner = await make_person("Owner")
    stranger = await make_person("Stranger")
    sent = await message_send(
        await owner.context(),
        draft=Draft(topic="question", body="See attached.", files=(Upload("scan.pdf", PDF_BYTES),)),
    )
    thread = await thread_open(await owner.context(), sent.thread_id)
    attachment = thread.messages[0].attachments[0]
    assert attachment.filename == "scan.pdf"
    with pytest.raises(NotFoundError):
        await thread_open(await stranger.context(), sent.thread_id)
    with pytest.raises(NotFoundError):
        await attachment_for(await stranger.context(), sent.thread_id, attachment.public_id)
    found = await attachment_for(await owner.context(), sent.thread_id, attachment.public_id)
    assert found["media_type"] == "application/pdf"


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        (Draft(topic="question", body="   "), "body"),
        (Draft(topic="question", body="x" * 5001), "body"),
        (Draft(topic="question", body="nul\x00byte"), "body"),
        (Draft(topic="surgery", body="Hi"), "topic"),
        (Draft(topic="refill", pharmacy="CVS"), "medications"),
        (Draft(topic="refill", typed_medications="Metformin"), "pharmacy"),
    ],
)
async def test_a_refused_message_writes_nothing(draft: Draft, reason: str) -> None:
    person = await make_person("Drafty")
    with pytest.raises(MessageError) as refused:
        await message_send(await person.context(), draft=draft)
    assert refused.value.reason == reason
    assert not await Conversation.exists().where(Conversation.patient == person.patient.id)


async def test_a_refused_file_writes_nothing() -> None:
    person = await make_person("Filer")
    with pytest.raises(AttachmentError):
        await message_send(
            await person.context(),
            draft=Draft(topic="question", body="Hi", files=(Upload("x.jpg", b"MZ\x90\x00"),)),
        )
    assert not await Conversation.exists().where(Conversation.patient == person.patient.id)


async def test_one_account_cannot_flood_the_queue_or_the_disk() -> None:
    """Past the hourly number of messages, or the daily number of files, a message is refused
    before any file is read, and nothing is written."""
    person = await make_person("Flood")
    context = await person.context()
    photo = Upload("p.jpg", photo_with_location())
    files_left = FILES_PER_ACCOUNT.limit
    for _ in range(MESSAGES_PER_ACCOUNT.limit):
        batch = (photo,) * min(3, files_left)
        files_left -= len(batch)
        await message_send(context, draft=Draft(topic="question", body="Hi", files=batch))
    assert files_left == 0
    sent = await Conversation.count().where(Conversation.patient == person.patient.id)
    stored = await MessageAttachment.count()

    for draft in (
        Draft(topic="question", body="One more"),
        Draft(topic="question", body="One more", files=(photo,)),
    ):
        with pytest.raises(MessageError) as refused:
            await message_send(context, draft=draft)
        assert refused.value.reason == "limit"

    assert await Conversation.count().where(Conversation.patient == person.patient.id) == sent
    assert await MessageAttachment.count() == stored
    other = await make_person("Calm")
    await message_send(await other.context(), draft=Draft(topic="question", body="Hi"))


async def test_a_refill_goes_to_the_refills_pool_and_the_patient_s_own_clinician() -> None:
    person = await make_person("Rita")
    clinician = await make_clinician()
    await Patient.update({Patient.primary_clinician: clinician}).where(
        Patient.id == person.patient.id
    )
    sent = await message_send(
        await person.context(),
        draft=Draft(
            topic="refill",
            typed_medications="Metformin 500 mg\n\nmetformin 500 mg\nAtorvastatin 20 mg",
            pharmacy="Main Street Pharmacy",
        ),
    )
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert (row.pool, row.prescriber) == ("refills", clinician)
    assert row.location is not None
    refills = await RefillRequest.select(RefillRequest.medication, RefillRequest.pharmacy).where(
        RefillRequest.conversation == row.id
    )
    assert [(r["medication"], r["pharmacy"]) for r in refills] == [
        ("Metformin 500 mg", "Main Street Pharmacy"),
        ("Atorvastatin 20 mg", "Main Street Pharmacy"),
    ]


def test_medicines_come_from_the_list_by_id_and_from_what_was_typed() -> None:
    choices = [MedicationChoice("m1", "Lisinopril 10 mg"), MedicationChoice("m2", "Metformin")]
    chosen = medications_chosen(["m2", "not-on-the-list"], "  Vitamin D \nmetformin", choices)
    assert chosen == [("m2", "Metformin"), ("", "Vitamin D")]


async def test_sending_starts_the_clinic_s_clock_and_is_audited() -> None:
    person = await make_person("Clock")
    sent = await message_send(await person.context(), draft=Draft(topic="question", body="Hi"))
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert row.waiting_since is not None
    assert row.due_at is not None
    assert row.warn_at is not None
    assert row.waiting_since < row.warn_at < row.due_at
    assert sent.expected_by >= row.due_at
    assert await AuditEvent.exists().where(
        AuditEvent.action == "messages.send", AuditEvent.resource_id == sent.thread_id
    )


async def test_writing_back_to_a_closed_conversation_opens_it_and_restarts_the_clock() -> None:
    person = await make_person("Again")
    context = await person.context()
    sent = await message_send(context, draft=Draft(topic="question", body="First"))
    await Conversation.update(
        {
            Conversation.status: "closed",
            Conversation.waiting_since: None,
            Conversation.due_at: None,
            Conversation.warn_at: None,
        }
    ).where(Conversation.public_id == sent.thread_id)
    again = await message_reply(context, thread_id=sent.thread_id, body="One more thing")
    row = await Conversation.objects().where(Conversation.public_id == sent.thread_id).first()
    assert row is not None
    assert row.status == "open"
    assert row.waiting_since is not None
    assert again.expected_by - row.waiting_since < timedelta(days=5)
    thread = await thread_open(context, sent.thread_id)
    assert [m.body for m in thread.messages] == ["First", "One more thing"]
