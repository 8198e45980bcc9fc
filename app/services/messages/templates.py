"""Reply templates: answers the clinic writes often, with placeholders filled in for the
conversation at hand. Administrators keep the list; everyone answering messages uses it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.access import StaffActor
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.i18n import N_
from app.services.audit import audit_staff
from app.services.console.roles import staff_require
from app.services.messages.threads import TOPICS
from app.tables import ReplyTemplate

MAX_TITLE = 100
MAX_BODY = 5000
# What a template may say in braces, and what each stands for (shown to administrators).
PLACEHOLDERS: Mapping[str, str] = {
    "first_name": N_("the patient's first name"),
    "clinic_name": N_("the clinic's name"),
    "clinic_phone": N_("the clinic's phone number"),
    "staff_name": N_("your name"),
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class TemplateError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # title | body | topic


@dataclass(frozen=True)
class TemplateLine:
    public_id: str
    title: str
    body: str
    topic: str  # "" for any topic


def template_render(body: str, values: Mapping[str, str]) -> str:
    """The template with each known placeholder filled in; anything else in braces stays as
    written (a plain replacement: a template can never reach into an object's attributes)."""
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), body)


def unknown_placeholders(body: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})


async def templates_for(topic: str) -> list[TemplateLine]:
    """The templates that suit a conversation's topic (and those for any topic)."""
    rows = await (
        ReplyTemplate.select(
            ReplyTemplate.public_id, ReplyTemplate.title, ReplyTemplate.body, ReplyTemplate.topic
        )
        .where(ReplyTemplate.active.eq(True), ReplyTemplate.topic.is_in([topic, ""]))
        .order_by(ReplyTemplate.title)
    )
    return [TemplateLine(**row) for row in rows]


async def templates_all(*, staff: StaffActor) -> list[TemplateLine]:
    staff_require(staff.role, "messages.templates")
    rows = await (
        ReplyTemplate.select(
            ReplyTemplate.public_id, ReplyTemplate.title, ReplyTemplate.body, ReplyTemplate.topic
        )
        .where(ReplyTemplate.active.eq(True))
        .order_by(ReplyTemplate.topic)
        .order_by(ReplyTemplate.title)
    )
    return [TemplateLine(**row) for row in rows]


def _checked(title: str, body: str, topic: str) -> tuple[str, str, str]:
    title, body = title.strip(), body.strip()
    if not title or len(title) > MAX_TITLE or "\x00" in title:
        raise TemplateError("title")
    if not body or len(body) > MAX_BODY or "\x00" in body or unknown_placeholders(body):
        raise TemplateError("body")
    if topic not in ("", *TOPICS):
        raise TemplateError("topic")
    return title, body, topic


async def template_save(
    *, staff: StaffActor, public_id: str | None, title: str, body: str, topic: str
) -> str:
    """Add a template (public_id None) or change one; its public id."""
    staff_require(staff.role, "messages.templates")
    title, body, topic = _checked(title, body, topic)
    async with write_transaction():
        if public_id is None:
            row = ReplyTemplate(
                title=title, body=body, topic=topic, created_by_staff=staff.staff_id
            )
            await ReplyTemplate.insert(row)
            public_id = str(row.public_id)
        else:
            changed = (
                await ReplyTemplate.update(
                    {
                        ReplyTemplate.title: title,
                        ReplyTemplate.body: body,
                        ReplyTemplate.topic: topic,
                        ReplyTemplate.updated_at: utcnow(),
                    }
                )
                .where(ReplyTemplate.public_id == public_id, ReplyTemplate.active.eq(True))
                .returning(ReplyTemplate.id)
            )
            if not changed:
                raise NotFoundError(public_id)
        await audit_staff(
            staff=staff,
            action="messages.template_saved",
            resource_type="ReplyTemplate",
            resource_id=public_id,
        )
    return public_id


async def template_remove(*, staff: StaffActor, public_id: str) -> None:
    """Take a template off the list (kept, unlisted, for the record of what was offered)."""
    staff_require(staff.role, "messages.templates")
    async with write_transaction():
        removed = (
            await ReplyTemplate.update(
                {ReplyTemplate.active: False, ReplyTemplate.updated_at: utcnow()}
            )
            .where(ReplyTemplate.public_id == public_id, ReplyTemplate.active.eq(True))
            .returning(ReplyTemplate.id)
        )
        if not removed:
            raise NotFoundError(public_id)
        await audit_staff(
            staff=staff,
            action="messages.template_removed",
            resource_type="ReplyTemplate",
            resource_id=public_id,
        )
