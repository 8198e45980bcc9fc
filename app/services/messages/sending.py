"""Writing to the care team: a new conversation, or a reply in one, with photos or PDFs.

The patient or a caregiver writes through the PatientContext; a caregiver writes as
themself, on the patient's behalf, and the message keeps who it was. Each message starts
(or keeps) the clinic's clock: the pool's target, counted in business hours, and the promise
the patient is shown. Everything is checked before anything is written, so a refused message
changes nothing and the form comes back with the text as typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.access import PatientContext
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.facts import record_fact
from app.services.messages.attachments import (
    Prepared,
    Upload,
    attachment_store,
    attachments_prepare,
)
from app.services.messages.refills import (
    MAX_MEDICATIONS,
    MAX_NAME,
    medications_active,
    medications_chosen,
    medications_confidential,
)
from app.services.messages.targets import (
    business_calendar,
    deadlines,
    reply_expected_by,
)
from app.services.messages.threads import TOPIC_POOLS, TOPICS, thread_row
from app.services.rate_limit import RateRule, rate_limit_allow
from app.tables import Conversation, Message, MessageAttachment, Patient, RefillRequest

MAX_BODY = 5000
# What one account may send, counted in the shared rate limiter before a file is read: a
# worried parent writes a few times a day; a script writing hundreds floods the clinic's queue
# and fills the disk with attachments (each up to 10 MB).
MESSAGES_PER_ACCOUNT = RateRule("messages_account", 20, timedelta(hours=1))
FILES_PER_ACCOUNT = RateRule("message_files_account", 15, timedelta(days=1))
MAX_SUBJECT = 120


class MessageError(ValueError):
    """A message we cannot send as it is; `reason` names the field to fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # topic | body | subject | medications | pharmacy


@dataclass(frozen=True)
class Draft:
    """What the patient typed, kept whole so a refused form comes back as it was."""

    topic: str = "question"
    subject: str = ""
    body: str = ""
    picked: tuple[str, ...] = ()  # medication ids picked from the record's list
    typed_medications: str = ""  # medicine names typed, one a line
    pharmacy: str = ""
    private: bool = False
    files: tuple[Upload, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Sent:
    thread_id: str
    expected_by: datetime


def _clean(text: str, limit: int, reason: str) -> str:
    if "\x00" in text:
        raise MessageError(reason)
    text = text.strip()
    if len(text) > limit:
        raise MessageError(reason)
    return text


async def reply_promise(context: PatientContext) -> datetime:
    """When a message sent now can expect an answer (shown before sending)."""
    location, _ = await _care_team(context.patient.id)
    return reply_expected_by(await business_calendar(location), utcnow())


async def _care_team(patient_id: int) -> tuple[int | None, int | None]:
    """The location whose hours count for this patient, and their own clinician."""
    row = (
        await Patient.select(Patient.primary_clinician, Patient.primary_clinician.location)
        .where(Patient.id == patient_id)
        .first()
    )
    if row is None:
        return None, None
    return row["primary_clinician.location"], row["primary_clinician"]


def _private(context: PatientContext, asked: bool) -> bool:
    """A teenager's own conversations are theirs (docs/security.md); an adult may keep one
    from their caregivers. A caregiver never starts a private one."""
    if not context.is_self:
        return False
    return asked or context.is_teenager_on_own_record


async def _insert_message(
    context: PatientContext, conversation_id: int, body: str, files: list[Prepared], now: datetime
) -> str:
    message = Message(
        conversation=conversation_id,
        sender="patient",
        body=body,
        sent_at=now,
        # Who wrote it, as they are named now: a caregiver writes for the patient as themself.
        author_account=context.actor.account_id,
        author_name=context.actor.display_name[:200],
        on_behalf=not context.is_self,
        author_relationship=None if context.is_self else context.relationship,
    )
    await Message.insert(message)
    for prepared in files:
        await MessageAttachment.insert(
            MessageAttachment(
                message=message.id,
                conversation=conversation_id,
                media_type=prepared.media_type,
                filename=prepared.filename,
                size_bytes=len(prepared.data),
                storage_key=await attachment_store(prepared),
                sha256=prepared.sha256,
            )
        )
    return str(message.public_id)


async def _within_sending_limits(context: PatientContext, files: int) -> None:
    """MessageError("limit") once this account has sent too much for now; nothing is read."""
    account = context.actor.account_public_id
    if not await rate_limit_allow(MESSAGES_PER_ACCOUNT, account):
        raise MessageError("limit")
    for _ in range(files):
        if not await rate_limit_allow(FILES_PER_ACCOUNT, account):
            raise MessageError("limit")


async def message_send(context: PatientContext, *, draft: Draft) -> Sent:
    """Start a conversation with the care team. Refused drafts raise MessageError or
    AttachmentError and write nothing."""
    context.require("messages")
    if draft.topic not in TOPICS:
        raise MessageError("topic")
    subject = _clean(draft.subject, MAX_SUBJECT, "subject")
    body = _clean(draft.body, MAX_BODY, "body")
    medicines: list[tuple[str, str]] = []
    pharmacy = ""
    private = _private(context, draft.private)
    if draft.topic == "refill":
        if "\x00" in draft.typed_medications or any("\x00" in ref for ref in draft.picked):
            raise MessageError("medications")
        choices = await medications_active(context)
        medicines = medications_chosen(list(draft.picked), draft.typed_medications, choices)
        # A caregiver's list never holds a confidential medicine; the patient's own request
        # for one is kept from their caregivers like the medicine itself.
        private = private or (
            context.is_self and medications_confidential(list(draft.picked), choices)
        )
        if not medicines or len(medicines) > MAX_MEDICATIONS:
            raise MessageError("medications")
        pharmacy = _clean(draft.pharmacy, MAX_NAME, "pharmacy")
        if not pharmacy:
            raise MessageError("pharmacy")
    elif not body:
        raise MessageError("body")
    await _within_sending_limits(context, len(draft.files))
    files = await attachments_prepare(list(draft.files))
    location, clinician = await _care_team(context.patient.id)
    calendar = await business_calendar(location)
    now = utcnow()
    due = deadlines(calendar, draft.topic, now)
    async with write_transaction():
        conversation = Conversation(
            patient=context.patient.id,
            subject=subject,
            topic=draft.topic,
            status="open",
            confidential=private,
            created_at=now,
            last_message_at=now,
            pool=TOPIC_POOLS[draft.topic],
            location=location,
            prescriber=clinician if draft.topic == "refill" else None,
            waiting_since=now,
            due_at=due.due_at,
            warn_at=due.warn_at,
        )
        await Conversation.insert(conversation)
        await _insert_message(context, conversation.id, body, files, now)
        for ref, name in medicines:
            await RefillRequest.insert(
                RefillRequest(
                    conversation=conversation.id,
                    patient=context.patient.id,
                    medication=name,
                    medication_ref=ref,
                    pharmacy=pharmacy,
                )
            )
        await record_fact("message_sent", context.patient.id, location, now, channel="portal")
        await audit_record(
            actor=context.actor,
            context=context,
            action="messages.send",
            resource_type="Communication",
            resource_id=str(conversation.public_id),
        )
    return Sent(str(conversation.public_id), reply_expected_by(calendar, now))


async def message_reply(
    context: PatientContext, *, thread_id: str, body: str, files: tuple[Upload, ...] = ()
) -> Sent:
    """Write again in a conversation (a closed one opens again: nothing falls silent)."""
    row = await thread_row(context, thread_id)
    body = _clean(body, MAX_BODY, "body")
    if not body:
        raise MessageError("body")
    await _within_sending_limits(context, len(files))
    prepared = await attachments_prepare(list(files))
    calendar = await business_calendar(row.location)
    now = utcnow()
    async with write_transaction():
        current = (
            await Conversation.select(Conversation.waiting_since, Conversation.topic)
            .where(Conversation.id == row.id)
            .first()
        )
        if current is None:
            raise NotFoundError(thread_id)
        values: dict[object, object] = {
            Conversation.last_message_at: now,
            Conversation.status: "open",
        }
        waiting_since = current["waiting_since"]
        if waiting_since is None:
            # The clinic had answered everything: its clock starts again with this message.
            due = deadlines(calendar, current["topic"], now)
            values.update(
                {
                    Conversation.waiting_since: now,
                    Conversation.due_at: due.due_at,
                    Conversation.warn_at: due.warn_at,
                    Conversation.resolved_at: None,
                    Conversation.resolution_minutes: None,
                    Conversation.resolution_business_minutes: None,
                }
            )
            waiting_since = now
        await Conversation.update(values).where(Conversation.id == row.id)  # type: ignore[arg-type]
        await _insert_message(context, row.id, body, prepared, now)
        await audit_record(
            actor=context.actor,
            context=context,
            action="messages.reply",
            resource_type="Communication",
            resource_id=thread_id,
        )
    return Sent(thread_id, reply_expected_by(calendar, waiting_since))
