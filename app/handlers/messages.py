"""Messages with the care team (/messages): the list, writing (a topic, then the message,
with photos or a PDF), a conversation and its replies, and its attachments.

The forms post in one request, files included, and a refused one comes back with the text as
typed, so nothing written is lost; everything works without JavaScript.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app import i18n
from app.access import PatientContext, age_rules
from app.clinic import clinic_today
from app.handlers.support import file_response, page
from app.services.messages import conversations_list
from app.services.messages.attachments import (
    MAX_BYTES,
    MAX_FILES,
    AttachmentError,
    Upload,
    attachment_read,
)
from app.services.messages.refills import MedicationChoice, medications_active
from app.services.messages.sending import (
    Draft,
    MessageError,
    message_reply,
    message_send,
    reply_promise,
)
from app.services.messages.threads import TOPICS, attachment_for, thread_open
from app.services.survey import survey_due
from app.web.guards import account_signed_in
from app.web.links import redirect_to

# A few photos at their largest, with room to spare: a larger file still gets a clear
# message on the form (attachments.py) rather than a bare refusal of the request.
MAX_REQUEST_BYTES = (MAX_FILES + 2) * MAX_BYTES
# Where a message written from a result or a visit starts.
ABOUT = {"result": "question", "visit": "appointment"}


def _is_teen(context: PatientContext) -> bool:
    return context.is_self and context.patient.age_on(clinic_today()) < age_rules().adult


async def _uploads(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    """The form's fields (lists for repeated ones) and its files, each read up to one byte
    past the limit: enough to say it is too large without holding more."""
    form = await request.form()
    fields: dict[str, Any] = {}
    files: list[Upload] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key == "files" and value.filename:
                files.append(Upload(filename=value.filename, data=await value.read(MAX_BYTES + 1)))
            await value.close()
        elif isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return {key: values if len(values) > 1 else values[0] for key, values in fields.items()}, tuple(
        files
    )


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, "")
    return value[0] if isinstance(value, list) else str(value)


async def _compose_page(
    context: PatientContext,
    draft: Draft,
    *,
    error: str = "",
    had_files: bool = False,
    status_code: int = 200,
) -> Template:
    choices: list[MedicationChoice] = []
    if draft.topic == "refill":
        choices = await medications_active(context)
    return page(
        "messages/new.html",
        context=context,
        tab="messages",
        topics=TOPICS,
        draft=draft,
        choices=choices,
        expected_by=await reply_promise(context),
        teen=_is_teen(context),
        error=error,
        had_files=had_files,
        max_files=MAX_FILES,
        max_megabytes=MAX_BYTES // (1024 * 1024),
        status_code=status_code,
    )


@get("/", name="messages")
async def messages(context: NamedDependency[PatientContext]) -> Template:
    conversations = await conversations_list(context)
    return page(
        "messages/messages.html", context=context, tab="messages", conversations=conversations
    )


@get("/new", name="message_new")
async def new(
    context: NamedDependency[PatientContext],
    topic: FromQuery[str] = "",
    about: FromQuery[str] = "",
) -> Template:
    """Pick a topic (one tap each), then write; from a result or a visit, straight to it."""
    context.require("messages")
    topic = topic if topic in TOPICS else ABOUT.get(about, "")
    if not topic:
        return page("messages/topics.html", context=context, tab="messages", topics=TOPICS)
    return await _compose_page(context, Draft(topic=topic, subject=_about_subject(about)))


def _about_subject(about: str) -> str:
    return {
        "result": i18n.gettext("About my test result"),
        "visit": i18n.gettext("About my visit"),
    }.get(about, "")


@post("/", name="message_send", request_max_body_size=MAX_REQUEST_BYTES)
async def send(
    request: Request[Any, Any, Any], context: NamedDependency[PatientContext]
) -> Template | Redirect:
    fields, files = await _uploads(request)
    picked = fields.get("medication", [])
    draft = Draft(
        topic=_text(fields, "topic"),
        subject=_text(fields, "subject"),
        body=_text(fields, "body"),
        picked=tuple(picked if isinstance(picked, list) else [picked]),
        typed_medications=_text(fields, "medications"),
        pharmacy=_text(fields, "pharmacy"),
        private=_text(fields, "private") == "yes",
        files=files,
    )
    if draft.topic not in TOPICS:
        draft = replace(draft, topic="question")
    try:
        sent = await message_send(context, draft=draft)
    except (MessageError, AttachmentError) as refused:
        return await _compose_page(
            context, draft, error=refused.reason, had_files=bool(files), status_code=400
        )
    return redirect_to(request, "message_thread", notice="message_sent", thread_id=sent.thread_id)


async def _thread_page(
    context: PatientContext,
    thread_id: str,
    *,
    typed: str = "",
    error: str = "",
    had_files: bool = False,
    status_code: int = 200,
) -> Template:
    opened = await thread_open(context, thread_id)
    answered = any(message.sender == "clinic" for message in opened.messages)
    return page(
        "messages/thread.html",
        context=context,
        tab="messages",
        thread=opened,
        survey=await survey_due(context.actor, task="reply_read") if answered else None,
        typed=typed,
        error=error,
        had_files=had_files,
        max_files=MAX_FILES,
        max_megabytes=MAX_BYTES // (1024 * 1024),
        status_code=status_code,
    )


@get("/{thread_id:str}", name="message_thread")
async def thread(context: NamedDependency[PatientContext], thread_id: FromPath[str]) -> Template:
    return await _thread_page(context, thread_id)


@post("/{thread_id:str}", name="message_reply", request_max_body_size=MAX_REQUEST_BYTES)
async def reply(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    thread_id: FromPath[str],
) -> Template | Redirect:
    fields, files = await _uploads(request)
    body = _text(fields, "body")
    try:
        await message_reply(context, thread_id=thread_id, body=body, files=files)
    except (MessageError, AttachmentError) as refused:
        return await _thread_page(
            context,
            thread_id,
            typed=body,
            error=refused.reason,
            had_files=bool(files),
            status_code=400,
        )
    return redirect_to(request, "message_thread", notice="message_sent", thread_id=thread_id)


@get("/{thread_id:str}/attachments/{attachment_id:str}", name="message_attachment")
async def attachment(
    context: NamedDependency[PatientContext],
    thread_id: FromPath[str],
    attachment_id: FromPath[str],
) -> Response[bytes]:
    found = await attachment_for(context, thread_id, attachment_id)
    return file_response(found, await attachment_read(found["storage_key"]))


router = Router(
    path="/messages",
    guards=[account_signed_in],
    route_handlers=[messages, new, send, thread, reply, attachment],
)
