"""The care team has written in a patient's conversation (a reply, a refill decision)."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import notify_patient
from app.notices.words import Message

MESSAGE_REPLY = Message("message_reply", subject=N_("You have a new message from %(clinic)s."))


def message_notice_url(public_id: str) -> str:
    """Where a reply's notice leads: the conversation, named by its random public id only."""
    return f"/messages/{public_id}"


async def send_message_reply(
    *, patient_id: int, conversation_public_id: str, confidential: bool
) -> int:
    """Everyone who follows the record's messages hears there is one (a confidential
    conversation: the patient alone), from the clinic, with nothing of what it says; how
    many were told."""
    return await notify_patient(
        patient_id=patient_id,
        category="messages",
        event=f"message-{conversation_public_id}",
        words=MESSAGE_REPLY.words,
        confidential=confidential,
        url=message_notice_url(conversation_public_id),
    )
