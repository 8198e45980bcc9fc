"""What's new: the clinic closes the loop on feedback ("You asked for evening visits: Tuesdays
are now open until 7"). Staff write a short note, with a Spanish version when they can; home
shows the newest one for a while. A note is the clinic's own words, never about a patient."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.access import StaffActor
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_insert
from app.services.outreach.campaigns import CampaignError
from app.tables import NewsNote

# Home shows a note for this long after it was written.
SHOWN_FOR = timedelta(days=60)
MAX_TITLE = 120
MAX_BODY = 600


@dataclass(frozen=True)
class NewsLine:
    public_id: str
    title: str
    body: str
    title_es: str
    body_es: str
    created_at: datetime
    withdrawn: bool = False

    def title_in(self, locale: str) -> str:
        return self.title_es if locale == "es" and self.title_es else self.title

    def body_in(self, locale: str) -> str:
        return self.body_es if locale == "es" and self.body_es else self.body


# The note is the same for everyone, so home keeps it in memory rather than asking the
# database on every view: a note written or withdrawn shows everywhere within this long (at
# once in the process that took the change).
KEPT_SECONDS = 30.0
_kept: tuple[float, NewsLine | None] | None = None


_COLUMNS = (
    NewsNote.public_id,
    NewsNote.title,
    NewsNote.body,
    NewsNote.title_es,
    NewsNote.body_es,
    NewsNote.created_at,
    NewsNote.withdrawn_at,
)


def _line(row: dict[str, object]) -> NewsLine:
    return NewsLine(
        public_id=str(row["public_id"]),
        title=str(row["title"]),
        body=str(row["body"]),
        title_es=str(row["title_es"]),
        body_es=str(row["body_es"]),
        created_at=row["created_at"],  # type: ignore[arg-type]
        withdrawn=row["withdrawn_at"] is not None,
    )


async def news_latest() -> NewsLine | None:
    """The note home shows: the newest one still standing, written in the last 60 days."""
    global _kept
    now = time.monotonic()
    if _kept is not None and now - _kept[0] < KEPT_SECONDS:
        line = _kept[1]
        if line is None or line.created_at > utcnow() - SHOWN_FOR:
            return line
    line = await _news_newest()
    _kept = (now, line)
    return line


def news_forget() -> None:
    """Read the note from the database next time (after a change, and between tests)."""
    global _kept
    _kept = None


async def _news_newest() -> NewsLine | None:
    row = (
        await NewsNote.select(*_COLUMNS)
        .where(NewsNote.withdrawn_at.is_null(), NewsNote.created_at > utcnow() - SHOWN_FOR)
        .order_by(NewsNote.id, ascending=False)
        .first()
    )
    return _line(row) if row else None


async def news_list(*, staff: StaffActor, limit: int = 20) -> list[NewsLine]:
    rows = await NewsNote.select(*_COLUMNS).order_by(NewsNote.id, ascending=False).limit(limit)
    return [_line(row) for row in rows]


def _clean(text: str, limit: int, reason: str, *, required: bool) -> str:
    text = text.replace("\x00", "").strip()
    if len(text) > limit or (required and not text):
        raise CampaignError(reason)
    return text


async def news_publish(
    *, staff: StaffActor, title: str, body: str, title_es: str = "", body_es: str = ""
) -> str:
    note = NewsNote(
        title=_clean(title, MAX_TITLE, "title", required=True),
        body=_clean(body, MAX_BODY, "body", required=True),
        title_es=_clean(title_es, MAX_TITLE, "title_es", required=False),
        body_es=_clean(body_es, MAX_BODY, "body_es", required=False),
        created_by_staff=staff.staff_id,
    )
    async with write_transaction():
        await NewsNote.insert(note)
        await audit_insert(
            actor_staff=staff.staff_id,
            action="news.publish",
            resource_type="NewsNote",
            resource_id=str(note.public_id),
            ip=staff.ip,
            user_agent=staff.user_agent,
        )
    news_forget()
    return str(note.public_id)


async def news_withdraw(*, staff: StaffActor, public_id: str) -> None:
    async with write_transaction():
        done = (
            await NewsNote.update({NewsNote.withdrawn_at: utcnow()})
            .where(NewsNote.public_id == public_id, NewsNote.withdrawn_at.is_null())
            .returning(NewsNote.id)
        )
        if not done:
            raise NotFoundError(public_id)
        await audit_insert(
            actor_staff=staff.staff_id,
            action="news.withdraw",
            resource_type="NewsNote",
            resource_id=public_id,
            ip=staff.ip,
            user_agent=staff.user_agent,
        )
    news_forget()
