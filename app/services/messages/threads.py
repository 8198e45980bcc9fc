"""Conversations with the care team as the patient (or their caregiver) reads them, scoped by
the PatientContext: the list, one thread with its messages, attachments and refill
decisions, and the unread count. Internal notes never come through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from piccolo.query.functions.aggregate import Count

from app.access import PatientContext
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.facts import record_fact
from app.services.messages.attachments import attachment_in
from app.services.messages.targets import business_calendar, reply_expected_by
from app.tables import Conversation, Message, MessageAttachment, RefillRequest

# What a patient writes about, and the clinic's pool that answers each.
TOPICS = ("question", "refill", "appointment", "billing", "other")
TOPIC_POOLS = {
    "question": "clinical",
    "refill": "refills",
    "appointment": "front_desk",
    "billing": "billing",
    "other": "front_desk",
}


@dataclass(frozen=True)
class ConversationLine:
    public_id: str
    subject: str
    topic: str
    status: str
    last_message_at: datetime
    unread: int


@dataclass(frozen=True)
class AttachmentLine:
    public_id: str
    filename: str
    media_type: str
    size_bytes: int

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


@dataclass(frozen=True)
class ThreadMessage:
    public_id: str
    sender: str  # patient | clinic
    body: str
    sent_at: datetime
    author_name: str
    # A caregiver wrote it for the patient (and how they are related).
    on_behalf: bool
    author_relationship: str | None
    # The staff member's role, for the clinic's messages.
    staff_role: str | None
    attachments: tuple[AttachmentLine, ...] = ()


@dataclass(frozen=True)
class RefillLine:
    public_id: str
    medication: str
    pharmacy: str
    status: str  # requested | approved | denied
    reason: str


@dataclass(frozen=True)
class Thread:
    public_id: str
    subject: str
    topic: str
    status: str
    confidential: bool
    created_at: datetime
    messages: tuple[ThreadMessage, ...]
    refills: tuple[RefillLine, ...]
    # When the patient can expect an answer, while the clinic owes one.
    expected_by: datetime | None


async def unread_count(context: PatientContext) -> int:
    """Care-team messages the patient has not opened yet (for the home page and the badge)."""
    if not context.may("messages"):
        return 0
    rows = await Message.raw(
        """
        SELECT COUNT(*) AS unread FROM message m JOIN conversation c ON c.id = m.conversation
        WHERE c.patient = {} AND m.sender = 'clinic' AND m.read_by_patient_at IS NULL
          AND (c.confidential = false OR {} = 1)
        """,
        context.patient.id,
        1 if context.sees_confidential else 0,
    )
    return int(rows[0]["unread"])


async def conversations_list(context: PatientContext, *, limit: int = 50) -> list[ConversationLine]:
    context.require("messages")
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="messages.list",
            resource_type="Communication",
        )
        query = Conversation.select(
            Conversation.id,
            Conversation.public_id,
            Conversation.subject,
            Conversation.topic,
            Conversation.status,
            Conversation.last_message_at,
        ).where(Conversation.patient == context.patient.id)
        if not context.sees_confidential:
            # Confidential conversations are for the patient themself (docs/security.md).
            query = query.where(Conversation.confidential.eq(False))
        rows = await query.order_by(Conversation.last_message_at, ascending=False).limit(limit)
        if not rows:
            return []
        unread_rows = await (
            Message.select(Message.conversation, Count(Message.id, alias="unread"))
            .where(
                Message.conversation.is_in([row["id"] for row in rows]),
                Message.sender == "clinic",
                Message.read_by_patient_at.is_null(),
            )
            .group_by(Message.conversation)
        )
    unread = {row["conversation"]: row["unread"] for row in unread_rows}
    return [
        ConversationLine(
            public_id=row["public_id"],
            subject=row["subject"],
            topic=row["topic"],
            status=row["status"],
            last_message_at=row["last_message_at"],
            unread=int(unread.get(row["id"], 0)),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ThreadRow:
    """A conversation's own columns, as the services work with them."""

    id: int
    public_id: str
    subject: str
    topic: str
    status: str
    confidential: bool
    created_at: datetime
    location: int | None
    waiting_since: datetime | None


THREAD_COLUMNS = (
    Conversation.id,
    Conversation.public_id,
    Conversation.subject,
    Conversation.topic,
    Conversation.status,
    Conversation.confidential,
    Conversation.created_at,
    Conversation.location,
    Conversation.waiting_since,
)


async def thread_row(context: PatientContext, public_id: str) -> ThreadRow:
    """The conversation behind `public_id` as this context may see it: on its record, not
    confidential unless the reader is the patient, and only where the grant opens messages.
    Anything else is not found (404), never a hint that it exists."""
    if not context.may("messages"):
        raise NotFoundError(public_id)
    query = Conversation.select(*THREAD_COLUMNS).where(
        Conversation.public_id == public_id, Conversation.patient == context.patient.id
    )
    if not context.sees_confidential:
        query = query.where(Conversation.confidential.eq(False))
    row = await query.first()
    if row is None:
        raise NotFoundError(public_id)
    return ThreadRow(**row)


async def thread_open(context: PatientContext, public_id: str) -> Thread:
    """One conversation, oldest message first; opening it marks the care team's messages
    read and is audited."""
    async with write_transaction():
        row = await thread_row(context, public_id)
        await audit_record(
            actor=context.actor,
            context=context,
            action="messages.view",
            resource_type="Communication",
            resource_id=public_id,
        )
        read = await (
            Message.update({Message.read_by_patient_at: utcnow()})
            .where(
                Message.conversation == row.id,
                Message.sender == "clinic",
                Message.read_by_patient_at.is_null(),
            )
            .returning(Message.id)
        )
        if read:
            await record_fact("reply_read", context.patient.id, channel="portal")
        messages = await thread_messages(row.id)
        refills = await refill_lines(row.id)
    return Thread(
        public_id=public_id,
        subject=row.subject,
        topic=row.topic,
        status=row.status,
        confidential=row.confidential,
        created_at=row.created_at,
        messages=tuple(messages),
        refills=tuple(refills),
        expected_by=await expected_reply(row),
    )


async def expected_reply(row: ThreadRow) -> datetime | None:
    """When the patient can expect the clinic's answer, while one is owed."""
    if row.status != "open" or row.waiting_since is None:
        return None
    return reply_expected_by(await business_calendar(row.location), row.waiting_since)


async def thread_messages(conversation_id: int) -> list[ThreadMessage]:
    """A conversation's messages with their attachments, for the patient's and the clinic's
    pages alike (internal notes are not messages)."""
    rows = await (
        Message.select(
            Message.id,
            Message.public_id,
            Message.sender,
            Message.body,
            Message.sent_at,
            Message.author_name,
            Message.on_behalf,
            Message.author_relationship,
            Message.author_staff.given_name,
            Message.author_staff.family_name,
            Message.author_staff.role,
            Message.author_account.display_name,
        )
        .where(Message.conversation == conversation_id)
        .order_by(Message.sent_at)
        .order_by(Message.id)
    )
    files = await (
        MessageAttachment.select(
            MessageAttachment.message,
            MessageAttachment.public_id,
            MessageAttachment.filename,
            MessageAttachment.media_type,
            MessageAttachment.size_bytes,
        )
        .where(MessageAttachment.conversation == conversation_id)
        .order_by(MessageAttachment.id)
    )
    by_message: dict[int, list[AttachmentLine]] = {}
    for file in files:
        by_message.setdefault(file["message"], []).append(
            AttachmentLine(
                public_id=file["public_id"],
                filename=file["filename"],
                media_type=file["media_type"],
                size_bytes=file["size_bytes"],
            )
        )
    return [
        ThreadMessage(
            public_id=row["public_id"],
            sender=row["sender"],
            body=row["body"],
            sent_at=row["sent_at"],
            author_name=_author(row),
            on_behalf=bool(row["on_behalf"]),
            author_relationship=row["author_relationship"],
            staff_role=row["author_staff.role"],
            attachments=tuple(by_message.get(row["id"], ())),
        )
        for row in rows
    ]


def _author(row: dict[str, object]) -> str:
    if row["author_staff.given_name"]:
        return f"{row['author_staff.given_name']} {row['author_staff.family_name']}"
    return str(row["author_name"] or row["author_account.display_name"] or "")


async def refill_lines(conversation_id: int) -> list[RefillLine]:
    rows = await (
        RefillRequest.select(
            RefillRequest.public_id,
            RefillRequest.medication,
            RefillRequest.pharmacy,
            RefillRequest.status,
            RefillRequest.reason,
        )
        .where(RefillRequest.conversation == conversation_id)
        .order_by(RefillRequest.id)
    )
    return [RefillLine(**row) for row in rows]


async def attachment_for(
    context: PatientContext, thread_id: str, attachment_id: str
) -> dict[str, str]:
    """An attachment of a conversation this context may open (else not found), audited as a
    look at the record. Returns its storage key, media type and file name."""
    async with write_transaction():
        thread = await thread_row(context, thread_id)
        row = await attachment_in(thread.id, attachment_id)
        await audit_record(
            actor=context.actor,
            context=context,
            action="messages.attachment_view",
            resource_type="Binary",
            resource_id=attachment_id,
        )
    return row
