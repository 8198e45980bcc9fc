"""Conversations with the care team, scoped by the PatientContext."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from piccolo.query.functions.aggregate import Count

from app.access import PatientContext
from app.db import write_transaction
from app.services.audit import audit_record
from app.tables import Conversation, Message


@dataclass(frozen=True)
class ConversationLine:
    public_id: str
    subject: str
    topic: str
    status: str
    last_message_at: datetime
    unread: int


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
