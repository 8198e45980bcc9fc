"""Messages with the care team: the patient's side (threads, sending, attachments, refills)
and the clinic's (queue, templates), with response targets counted in business hours."""

from app.services.messages.threads import ConversationLine, conversations_list, unread_count

__all__ = ["ConversationLine", "conversations_list", "unread_count"]
