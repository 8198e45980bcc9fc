"""The clinic's message queue (/staff/messages): the pools a role answers with their views
(waiting, mine, the morning's and the end of the day's), one conversation with its owner,
replies, templates, internal notes, refill decisions and the chart mark, and the reply
templates administrators keep. Staff sessions only (the console's own cookie)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.handlers.support import file_response
from app.services.messages.attachments import attachment_read
from app.services.messages.queue import (
    VIEWS,
    QueueError,
    queue_assign,
    queue_attachment,
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
from app.services.messages.templates import (
    PLACEHOLDERS,
    TemplateError,
    template_remove,
    template_save,
    templates_all,
)
from app.services.messages.threads import TOPICS
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/", name="staff_messages")
async def queue(
    staff: NamedDependency[StaffActor],
    view: FromQuery[str] = "waiting",
    pool: FromQuery[str] = "",
    location: FromQuery[str] = "",
) -> Template:
    found = await queue_list(staff=staff, view=view, pool=pool, location=location)
    return staff_page("console/messages.html", staff=staff, queue=found, views=VIEWS)


async def _thread_page(
    staff: StaffActor,
    thread_id: str,
    *,
    template: str = "",
    error: QueueError | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    thread = await queue_thread_open(staff=staff, public_id=thread_id, template=template)
    return staff_page(
        "console/message.html",
        staff=staff,
        thread=thread,
        error=error.reason if error else "",
        holder=error.holder if error else "",
        typed=typed or {},
        status_code=status_code,
    )


@get("/{thread_id:str}", name="staff_message")
async def thread(
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    template: FromQuery[str] = "",
) -> Template:
    return await _thread_page(staff, thread_id, template=template)


async def _act(
    request: Request[Any, Any, Any],
    staff: StaffActor,
    thread_id: str,
    action: Awaitable[object],
    *,
    notice: str,
    typed: dict[str, str] | None = None,
    refused_status: int = 400,
) -> Template | Redirect:
    """Do one queue action; back to the conversation with its notice, or the conversation again
    with why it was refused and what was typed kept."""
    try:
        await action
    except QueueError as refused:
        return await _thread_page(
            staff, thread_id, error=refused, typed=typed, status_code=refused_status
        )
    return redirect_to(request, "staff_message", notice=notice, thread_id=thread_id)


@post("/{thread_id:str}/claim", name="staff_message_claim")
async def claim(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], thread_id: FromPath[str]
) -> Template | Redirect:
    # Someone else was quicker: 409, and the page says who.
    action = queue_claim(staff=staff, public_id=thread_id)
    return await _act(
        request, staff, thread_id, action, notice="conversation_claimed", refused_status=409
    )


@post("/{thread_id:str}/assign", name="staff_message_assign")
async def assign(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    action = queue_assign(staff=staff, public_id=thread_id, to=data.get("to", ""))
    return await _act(request, staff, thread_id, action, notice="conversation_assigned")


@post("/{thread_id:str}/reply", name="staff_message_reply")
async def reply(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    body = data.get("body", "")
    action = queue_reply(
        staff=staff, public_id=thread_id, body=body, close=data.get("close") == "yes"
    )
    return await _act(
        request, staff, thread_id, action, notice="conversation_replied", typed={"body": body}
    )


@post("/{thread_id:str}/note", name="staff_message_note")
async def note(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    body = data.get("note", "")
    action = queue_note(staff=staff, public_id=thread_id, body=body)
    return await _act(
        request, staff, thread_id, action, notice="conversation_noted", typed={"note": body}
    )


@post("/{thread_id:str}/close", name="staff_message_close")
async def close(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], thread_id: FromPath[str]
) -> Template | Redirect:
    action = queue_close(staff=staff, public_id=thread_id)
    return await _act(request, staff, thread_id, action, notice="conversation_closed")


@post("/{thread_id:str}/reopen", name="staff_message_reopen")
async def reopen(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], thread_id: FromPath[str]
) -> Template | Redirect:
    action = queue_reopen(staff=staff, public_id=thread_id)
    return await _act(request, staff, thread_id, action, notice="conversation_reopened")


@post("/{thread_id:str}/refills/{refill_id:str}", name="staff_message_refill")
async def refill(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    refill_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    decision = data.get("decision", "")
    if decision not in ("approve", "deny"):
        raise NotFoundException()
    written = data.get("note", "")
    action = refill_decide(
        staff=staff,
        public_id=thread_id,
        refill_id=refill_id,
        approve=decision == "approve",
        note=written,
    )
    return await _act(
        request,
        staff,
        thread_id,
        action,
        notice="conversation_decided",
        typed={f"refill-{refill_id}": written},
    )


@post("/{thread_id:str}/documented", name="staff_message_documented")
async def documented(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    thread_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    written = data.get("note", "")
    action = queue_document(staff=staff, public_id=thread_id, note=written)
    return await _act(
        request,
        staff,
        thread_id,
        action,
        notice="conversation_documented",
        typed={"chart": written},
    )


@get("/{thread_id:str}/attachments/{attachment_id:str}", name="staff_message_attachment")
async def attachment(
    staff: NamedDependency[StaffActor], thread_id: FromPath[str], attachment_id: FromPath[str]
) -> Response[bytes]:
    found = await queue_attachment(staff=staff, public_id=thread_id, attachment_id=attachment_id)
    return file_response(found, await attachment_read(found["storage_key"]))


# Reply templates (administrators) -------------------------------------------------------


async def _templates_page(
    staff: StaffActor,
    *,
    error: str = "",
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return staff_page(
        "console/message_templates.html",
        staff=staff,
        templates=await templates_all(staff=staff),
        topics=TOPICS,
        placeholders=PLACEHOLDERS,
        error=error,
        typed=typed or {"title": "", "body": "", "topic": "", "public_id": ""},
        status_code=status_code,
    )


@get("/templates", name="staff_message_templates")
async def templates(staff: NamedDependency[StaffActor]) -> Template:
    return await _templates_page(staff)


async def _save(
    request: Request[Any, Any, Any], staff: StaffActor, public_id: str | None, data: dict[str, str]
) -> Template | Redirect:
    typed = {key: data.get(key, "") for key in ("title", "body", "topic")}
    try:
        await template_save(staff=staff, public_id=public_id, **typed)
    except TemplateError as refused:
        return await _templates_page(
            staff,
            error=refused.reason,
            typed={**typed, "public_id": public_id or ""},
            status_code=400,
        )
    return redirect_to(request, "staff_message_templates", notice="reply_template_saved")


@post("/templates", name="staff_message_template_add")
async def template_add(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Template | Redirect:
    return await _save(request, staff, None, data)


@post("/templates/{template_id:str}", name="staff_message_template_save")
async def template_change(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    template_id: FromPath[str],
    data: Form,
) -> Template | Redirect:
    return await _save(request, staff, template_id, data)


@post("/templates/{template_id:str}/remove", name="staff_message_template_remove")
async def template_drop(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], template_id: FromPath[str]
) -> Redirect:
    await template_remove(staff=staff, public_id=template_id)
    return redirect_to(request, "staff_message_templates", notice="reply_template_removed")


router = Router(
    "/messages",
    guards=[staff_permission("messages")],
    route_handlers=[
        queue,
        templates,
        template_add,
        template_change,
        template_drop,
        thread,
        claim,
        assign,
        reply,
        note,
        close,
        reopen,
        refill,
        documented,
        attachment,
    ],
)
