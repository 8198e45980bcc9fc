"""The Messages tab: conversations with the care team, read through the patient context."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.messages import conversations_list


@get("/messages", name="messages")
async def messages(context: NamedDependency[PatientContext]) -> Template:
    conversations = await conversations_list(context)
    return page(
        "messages/messages.html", context=context, tab="messages", conversations=conversations
    )
