"""The Messages tab: conversations with the care team, read through the patient context."""

from __future__ import annotations

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.messages import conversations_list
from app.web.guards import account_signed_in


@get("/", name="messages")
async def messages(context: NamedDependency[PatientContext]) -> Template:
    conversations = await conversations_list(context)
    return page(
        "messages/messages.html", context=context, tab="messages", conversations=conversations
    )


router = Router("/messages", guards=[account_signed_in], route_handlers=[messages])
