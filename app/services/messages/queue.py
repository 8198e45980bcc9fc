"""The clinic's side of messages: pools by topic (and location), owners, internal notes,
replies (with templates), close and reopen, refill decisions, and the chart mark.

Each conversation waits in the pool that answers its topic; staff see the pools their role
answers (console/roles.py). Claiming is one conditional update, so of two people claiming at
once one wins and the other is told who has it. A conversation waiting on the clinic has a
due time and a warning time from its topic's target in business hours (targets.py), so the
queue can show what is overdue or about to be. Every open, reply, assignment and note writes
an audit row in its own transaction; the patient hears of a reply through the notification
path, with nothing of its content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access import StaffActor
from app.access.grants import age_on
from app.clinic import clinic_profile, clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.notices import send_message_reply
from app.services.audit import audit_staff
from app.services.console.patients import audit_staff_saw
from app.services.console.roles import staff_may, staff_pools, staff_require
from app.services.facts import record_fact
from app.services.messages.attachments import attachment_in
from app.services.messages.targets import (
    business_calendar,
    business_minutes_between,
    deadlines,
    next_opening,
    previous_close,
)
from app.services.messages.templates import TemplateLine, template_render, templates_for
from app.services.messages.threads import (
    RefillLine,
    ThreadMessage,
    refill_lines,
    thread_messages,
)
from app.tables import (
    Conversation,
    ConversationNote,
    Message,
    RefillRequest,
    StaffUser,
)

VIEWS = ("waiting", "mine", "morning", "evening")
QUEUE_LIMIT = 200
MAX_REPLY = 5000
MAX_NOTE = 2000
MAX_CHART_NOTE = 500


class QueueError(ValueError):
    """An action the queue refuses; `reason` says why (and `holder` who has a claim)."""

    def __init__(self, reason: str, holder: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # claimed | colleague | body | note | reason | decided
        self.holder = holder


def state_of(
    *,
    status: str,
    waiting_since: datetime | None,
    due_at: datetime | None,
    warn_at: datetime | None,
    now: datetime,
) -> str:
    """closed | answered (the patient's turn) | overdue | soon (about to breach) | waiting."""
    if status != "open":
        return "closed"
    if waiting_since is None or due_at is None:
        return "answered"
    if due_at <= now:
        return "overdue"
    if warn_at is not None and warn_at <= now:
        return "soon"
    return "waiting"


@dataclass(frozen=True)
class QueueLine:
    public_id: str
    subject: str
    topic: str
    pool: str
    patient_name: str
    mrn: str
    waiting_since: datetime | None
    due_at: datetime | None
    state: str
    assigned_name: str | None
    mine: bool
    location_name: str | None
    refills_waiting: int
    confidential: bool


@dataclass(frozen=True)
class Queue:
    view: str
    pool: str
    location: str
    pools: tuple[str, ...]
    locations: tuple[tuple[str, str], ...]
    lines: list[QueueLine]
    # The morning view lists what came in since the clinic last closed.
    since: datetime | None
    # The end-of-day view lists what is due before the clinic opens again.
    until: datetime | None


async def _my_clinician(staff: StaffActor) -> int | None:
    row = await StaffUser.select(StaffUser.clinician).where(StaffUser.id == staff.staff_id).first()
    return row["clinician"] if row else None


async def queue_list(
    *, staff: StaffActor, view: str = "waiting", pool: str = "", location: str = ""
) -> Queue:
    """A view of the pools this staff member answers, soonest due first; each patient shown
    is audited."""
    pools = staff_pools(staff.role)
    view = view if view in VIEWS else "waiting"
    chosen = [pool] if pool in pools else list(pools)
    now = utcnow()
    calendar = await business_calendar()
    conditions = [f"c.pool IN ({', '.join('{}' for _ in chosen)})", "c.status = 'open'"]
    values: list[Any] = list(chosen)
    if location:
        conditions.append("l.code = {}")
        values.append(location)
    since = until = None
    if view == "mine":
        conditions.append(
            "(c.assigned_staff = {} OR (c.assigned_staff IS NULL AND c.pool = 'refills'"
            " AND c.prescriber IS NOT NULL AND c.prescriber = {}))"
        )
        values += [staff.staff_id, await _my_clinician(staff) or 0]
    else:
        conditions.append("c.waiting_since IS NOT NULL")
    if view == "morning":
        since = previous_close(calendar, now)
        conditions.append("c.waiting_since >= {}")
        values.append(since)
    elif view == "evening":
        until = next_opening(calendar, now)
        conditions.append("c.due_at <= {}")
        values.append(until)
    rows = await Conversation.raw(
        f"""
        SELECT c.public_id, c.subject, c.topic, c.pool, c.status, c.confidential,
               c.waiting_since, c.due_at, c.warn_at, c.assigned_staff,
               p.id AS patient_id, p.public_id AS patient_public_id, p.given_name,
               p.family_name, p.mrn, s.given_name AS staff_given, s.family_name AS staff_family,
               l.name AS location_name,
               (SELECT COUNT(*) FROM refill_request r
                WHERE r.conversation = c.id AND r.status = 'requested') AS refills_waiting
        FROM conversation c
        JOIN patient p ON p.id = c.patient
        LEFT JOIN staff_user s ON s.id = c.assigned_staff
        LEFT JOIN location l ON l.id = c.location
        WHERE {" AND ".join(conditions)}
        ORDER BY CASE WHEN c.due_at IS NULL THEN 1 ELSE 0 END, c.due_at, c.last_message_at DESC
        LIMIT {QUEUE_LIMIT}
        """,  # noqa: S608  (only fixed clauses and placeholders are formatted in)
        *values,
    )
    await audit_staff_saw(
        staff=staff,
        action="messages.queue_view",
        patients=[(row["patient_id"], row["patient_public_id"]) for row in rows],
    )
    lines = [
        QueueLine(
            public_id=row["public_id"],
            subject=row["subject"],
            topic=row["topic"],
            pool=row["pool"],
            patient_name=f"{row['given_name']} {row['family_name']}",
            mrn=row["mrn"],
            waiting_since=row["waiting_since"],
            due_at=row["due_at"],
            state=state_of(
                status=row["status"],
                waiting_since=row["waiting_since"],
                due_at=row["due_at"],
                warn_at=row["warn_at"],
                now=now,
            ),
            assigned_name=(
                f"{row['staff_given']} {row['staff_family']}" if row["staff_given"] else None
            ),
            mine=row["assigned_staff"] == staff.staff_id,
            location_name=row["location_name"],
            refills_waiting=int(row["refills_waiting"]),
            confidential=bool(row["confidential"]),
        )
        for row in rows
    ]
    return Queue(
        view=view,
        pool=pool if pool in pools else "",
        location=location,
        pools=pools,
        locations=clinic_profile().locations,
        lines=lines,
        since=since,
        until=until,
    )


@dataclass(frozen=True)
class _Row:
    """A conversation as the queue's actions need it."""

    id: int
    public_id: str
    patient: int
    pool: str
    topic: str
    status: str
    confidential: bool
    location: int | None
    created_at: datetime
    waiting_since: datetime | None
    first_response_at: datetime | None
    assigned_staff: int | None


_ROW_COLUMNS = (
    Conversation.id,
    Conversation.public_id,
    Conversation.patient,
    Conversation.pool,
    Conversation.topic,
    Conversation.status,
    Conversation.confidential,
    Conversation.location,
    Conversation.created_at,
    Conversation.waiting_since,
    Conversation.first_response_at,
    Conversation.assigned_staff,
)


async def _row(staff: StaffActor, public_id: str) -> _Row:
    """The conversation, if it exists (404) and sits in a pool this role answers (403)."""
    found = (
        await Conversation.select(*_ROW_COLUMNS).where(Conversation.public_id == public_id).first()
    )
    if found is None:
        raise NotFoundError(public_id)
    row = _Row(**found)
    staff_require(staff.role, f"messages.pool.{row.pool}")
    return row


@dataclass(frozen=True)
class NoteLine:
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Colleague:
    public_id: str
    name: str
    role: str


@dataclass(frozen=True)
class StaffThread:
    public_id: str
    subject: str
    topic: str
    pool: str
    status: str
    state: str
    confidential: bool
    created_at: datetime
    patient_public_id: str
    patient_name: str
    patient_first_name: str
    mrn: str
    age: int
    messages: tuple[ThreadMessage, ...]
    notes: tuple[NoteLine, ...]
    refills: tuple[RefillLine, ...]
    assigned_public_id: str | None
    assigned_name: str | None
    mine: bool
    waiting_since: datetime | None
    due_at: datetime | None
    first_response_at: datetime | None
    first_response_minutes: int | None
    first_response_business_minutes: int | None
    resolved_at: datetime | None
    resolution_minutes: int | None
    resolution_business_minutes: int | None
    documented_at: datetime | None
    documented_by: str | None
    documented_note: str
    prescriber_name: str | None
    colleagues: tuple[Colleague, ...]
    templates: tuple[TemplateLine, ...]
    # The reply box, filled from a template when one was chosen.
    draft: str


async def queue_thread_open(
    *, staff: StaffActor, public_id: str, template: str = ""
) -> StaffThread:
    """One conversation as the clinic sees it: messages, who wrote each (and for whom),
    internal notes, refills, owner and timing; audited as a look at the record."""
    found = await Conversation.raw(
        """
        SELECT c.*, p.public_id AS patient_public_id, p.given_name, p.family_name,
               p.preferred_name, p.mrn, p.birth_date,
               a.public_id AS assigned_public_id, a.given_name AS assigned_given,
               a.family_name AS assigned_family,
               d.given_name AS documented_given, d.family_name AS documented_family,
               k.prefix AS prescriber_prefix, k.given_name AS prescriber_given,
               k.family_name AS prescriber_family
        FROM conversation c
        JOIN patient p ON p.id = c.patient
        LEFT JOIN staff_user a ON a.id = c.assigned_staff
        LEFT JOIN staff_user d ON d.id = c.documented_by_staff
        LEFT JOIN clinician k ON k.id = c.prescriber
        WHERE c.public_id = {}
        """,
        public_id,
    )
    if not found:
        raise NotFoundError(public_id)
    row = found[0]
    staff_require(staff.role, f"messages.pool.{row['pool']}")
    async with write_transaction():
        await audit_staff(
            staff=staff,
            action="messages.staff_view",
            patient_id=row["patient"],
            resource_type="Communication",
            resource_id=public_id,
        )
        messages = await thread_messages(row["id"])
        refills = await refill_lines(row["id"])
        notes = await (
            ConversationNote.select(
                ConversationNote.body,
                ConversationNote.created_at,
                ConversationNote.staff.given_name,
                ConversationNote.staff.family_name,
            )
            .where(ConversationNote.conversation == row["id"])
            .order_by(ConversationNote.created_at)
            .order_by(ConversationNote.id)
        )
    templates = await templates_for(row["topic"])
    first_name = row["preferred_name"] or row["given_name"]
    chosen = next((line for line in templates if line.public_id == template), None)
    draft = (
        template_render(
            chosen.body,
            {
                "first_name": first_name,
                "clinic_name": clinic_profile().name,
                "clinic_phone": clinic_profile().phone,
                "staff_name": staff.display_name,
            },
        )
        if chosen
        else ""
    )
    return StaffThread(
        public_id=public_id,
        subject=row["subject"],
        topic=row["topic"],
        pool=row["pool"],
        status=row["status"],
        state=state_of(
            status=row["status"],
            waiting_since=row["waiting_since"],
            due_at=row["due_at"],
            warn_at=row["warn_at"],
            now=utcnow(),
        ),
        confidential=bool(row["confidential"]),
        created_at=row["created_at"],
        patient_public_id=row["patient_public_id"],
        patient_name=f"{row['given_name']} {row['family_name']}",
        patient_first_name=first_name,
        mrn=row["mrn"],
        age=age_on(row["birth_date"], clinic_today()),
        messages=tuple(messages),
        notes=tuple(
            NoteLine(
                author=" ".join(
                    part for part in (note["staff.given_name"], note["staff.family_name"]) if part
                ),
                body=note["body"],
                created_at=note["created_at"],
            )
            for note in notes
        ),
        refills=tuple(refills),
        assigned_public_id=row["assigned_public_id"],
        assigned_name=(
            f"{row['assigned_given']} {row['assigned_family']}" if row["assigned_given"] else None
        ),
        mine=row["assigned_staff"] == staff.staff_id,
        waiting_since=row["waiting_since"],
        due_at=row["due_at"],
        first_response_at=row["first_response_at"],
        first_response_minutes=row["first_response_minutes"],
        first_response_business_minutes=row["first_response_business_minutes"],
        resolved_at=row["resolved_at"],
        resolution_minutes=row["resolution_minutes"],
        resolution_business_minutes=row["resolution_business_minutes"],
        documented_at=row["documented_at"],
        documented_by=(
            f"{row['documented_given']} {row['documented_family']}"
            if row["documented_given"]
            else None
        ),
        documented_note=row["documented_note"],
        prescriber_name=(
            " ".join(
                part
                for part in (
                    row["prescriber_prefix"],
                    row["prescriber_given"],
                    row["prescriber_family"],
                )
                if part
            )
            if row["prescriber_given"]
            else None
        ),
        colleagues=tuple(await colleagues_for(row["pool"])),
        templates=tuple(templates),
        draft=draft,
    )


async def colleagues_for(pool: str) -> list[Colleague]:
    """Who a conversation in this pool can be given to: active staff whose role answers it."""
    rows = await (
        StaffUser.select(
            StaffUser.public_id, StaffUser.given_name, StaffUser.family_name, StaffUser.role
        )
        .where(StaffUser.disabled_at.is_null())
        .order_by(StaffUser.family_name)
        .order_by(StaffUser.given_name)
    )
    return [
        Colleague(row["public_id"], f"{row['given_name']} {row['family_name']}", row["role"])
        for row in rows
        if staff_may(row["role"], f"messages.pool.{pool}")
    ]


async def _audit(staff: StaffActor, row: _Row, action: str) -> None:
    await audit_staff(
        staff=staff,
        action=action,
        patient_id=row.patient,
        resource_type="Communication",
        resource_id=row.public_id,
    )


async def queue_claim(*, staff: StaffActor, public_id: str) -> None:
    """Take a conversation no one owns. One conditional update: of two people claiming at
    once, one wins and the other gets QueueError("claimed") naming who has it."""
    row = await _row(staff, public_id)
    async with write_transaction():
        won = (
            await Conversation.update(
                {Conversation.assigned_staff: staff.staff_id, Conversation.assigned_at: utcnow()}
            )
            .where(Conversation.id == row.id, Conversation.assigned_staff.is_null())
            .returning(Conversation.id)
        )
        if won:
            await _audit(staff, row, "messages.claim")
            return
    holder = (
        await Conversation.select(
            Conversation.assigned_staff,
            Conversation.assigned_staff.given_name,
            Conversation.assigned_staff.family_name,
        )
        .where(Conversation.id == row.id)
        .first()
    )
    if holder is None or holder["assigned_staff"] == staff.staff_id:
        return  # already theirs
    raise QueueError(
        "claimed",
        holder=f"{holder['assigned_staff.given_name']} {holder['assigned_staff.family_name']}",
    )


async def queue_assign(*, staff: StaffActor, public_id: str, to: str) -> None:
    """Give the conversation to a colleague who answers its pool, or back to the pool
    (`to` empty)."""
    row = await _row(staff, public_id)
    colleague_id: int | None = None
    if to:
        found = (
            await StaffUser.select(StaffUser.id, StaffUser.role)
            .where(StaffUser.public_id == to, StaffUser.disabled_at.is_null())
            .first()
        )
        if found is None or not staff_may(found["role"], f"messages.pool.{row.pool}"):
            raise QueueError("colleague")
        colleague_id = found["id"]
    async with write_transaction():
        await Conversation.update(
            {
                Conversation.assigned_staff: colleague_id,
                Conversation.assigned_at: utcnow() if colleague_id else None,
            }
        ).where(Conversation.id == row.id)
        await _audit(staff, row, "messages.assign" if colleague_id else "messages.unassign")


def _clean(text: str, limit: int, reason: str) -> str:
    text = text.strip()
    if not text or len(text) > limit or "\x00" in text:
        raise QueueError(reason)
    return text


async def queue_note(*, staff: StaffActor, public_id: str, body: str) -> None:
    """An internal note: for staff only, never shown to the patient or a caregiver."""
    body = _clean(body, MAX_NOTE, "note")
    row = await _row(staff, public_id)
    async with write_transaction():
        await ConversationNote.insert(
            ConversationNote(conversation=row.id, staff=staff.staff_id, body=body)
        )
        await _audit(staff, row, "messages.note")


async def _tell_patient(row: _Row) -> None:
    """Inside the caller's transaction: a notice that there is a reply, by each person's
    choices (a confidential conversation: the patient alone), never its content."""
    await send_message_reply(
        patient_id=row.patient, conversation_public_id=row.public_id, confidential=row.confidential
    )


async def _answered(row: _Row, now: datetime, values: dict[Any, Any], staff: StaffActor) -> None:
    """The clinic answered: nothing waits any more; the first answer's times are recorded,
    and an unowned conversation becomes the answerer's."""
    values.update(
        {
            Conversation.last_message_at: now,
            Conversation.waiting_since: None,
            Conversation.due_at: None,
            Conversation.warn_at: None,
        }
    )
    if row.first_response_at is None:
        calendar = await business_calendar(row.location)
        values.update(
            {
                Conversation.first_response_at: now,
                Conversation.first_response_minutes: _minutes(row.created_at, now),
                Conversation.first_response_business_minutes: business_minutes_between(
                    calendar, row.created_at, now
                ),
            }
        )
    if row.assigned_staff is None:
        values[Conversation.assigned_staff] = staff.staff_id
        values[Conversation.assigned_at] = now


def _minutes(start: datetime, end: datetime) -> int:
    return max(int((end - start).total_seconds() // 60), 0)


async def _resolved(row: _Row, now: datetime, values: dict[Any, Any]) -> None:
    calendar = await business_calendar(row.location)
    values.update(
        {
            Conversation.status: "closed",
            Conversation.waiting_since: None,
            Conversation.due_at: None,
            Conversation.warn_at: None,
            Conversation.resolved_at: now,
            Conversation.resolution_minutes: _minutes(row.created_at, now),
            Conversation.resolution_business_minutes: business_minutes_between(
                calendar, row.created_at, now
            ),
        }
    )


async def queue_reply(*, staff: StaffActor, public_id: str, body: str, close: bool = False) -> None:
    """Answer the patient (and close the conversation, if asked): the patient is told
    there is a message; the response time is recorded."""
    body = _clean(body, MAX_REPLY, "body")
    row = await _row(staff, public_id)
    now = utcnow()
    values: dict[Any, Any] = {}
    await _answered(row, now, values, staff)
    if close:
        await _resolved(row, now, values)
    async with write_transaction():
        await Message.insert(
            Message(
                conversation=row.id,
                sender="clinic",
                body=body,
                sent_at=now,
                author_staff=staff.staff_id,
            )
        )
        await Conversation.update(values).where(Conversation.id == row.id)
        if row.first_response_at is None:
            await record_fact(
                "message_answered",
                row.patient,
                row.location,
                now,
                channel="portal",
                value=float(_minutes(row.created_at, now)),
            )
        await _audit(staff, row, "messages.staff_reply")
        if close:
            await _audit(staff, row, "messages.close")
        await _tell_patient(row)


async def queue_close(*, staff: StaffActor, public_id: str) -> None:
    row = await _row(staff, public_id)
    values: dict[Any, Any] = {}
    await _resolved(row, utcnow(), values)
    async with write_transaction():
        await Conversation.update(values).where(Conversation.id == row.id)
        await _audit(staff, row, "messages.close")


async def queue_reopen(*, staff: StaffActor, public_id: str) -> None:
    """Open a closed conversation again: it waits on the clinic from now, with its target."""
    row = await _row(staff, public_id)
    now = utcnow()
    due = deadlines(await business_calendar(row.location), row.topic, now)
    async with write_transaction():
        await Conversation.update(
            {
                Conversation.status: "open",
                Conversation.waiting_since: now,
                Conversation.due_at: due.due_at,
                Conversation.warn_at: due.warn_at,
                Conversation.resolved_at: None,
                Conversation.resolution_minutes: None,
                Conversation.resolution_business_minutes: None,
            }
        ).where(Conversation.id == row.id, Conversation.status == "closed")
        await _audit(staff, row, "messages.reopen")


async def refill_decide(
    *, staff: StaffActor, public_id: str, refill_id: str, approve: bool, note: str
) -> None:
    """The prescriber approves or denies one medicine, with a note to the patient (the
    reason, when denied). The note is the clinic's answer in the conversation."""
    staff_require(staff.role, "messages.refills.decide")
    note = _clean(note, MAX_REPLY, "reason")
    row = await _row(staff, public_id)
    now = utcnow()
    values: dict[Any, Any] = {}
    async with write_transaction():
        decided = (
            await RefillRequest.update(
                {
                    RefillRequest.status: "approved" if approve else "denied",
                    RefillRequest.reason: note[:500],
                    RefillRequest.decided_by_staff: staff.staff_id,
                    RefillRequest.decided_at: now,
                }
            )
            .where(
                RefillRequest.public_id == refill_id,
                RefillRequest.conversation == row.id,
                RefillRequest.status == "requested",
            )
            .returning(RefillRequest.id)
        )
        if not decided:
            raise QueueError("decided")
        await Message.insert(
            Message(
                conversation=row.id,
                sender="clinic",
                body=note,
                sent_at=now,
                author_staff=staff.staff_id,
            )
        )
        still_open = await RefillRequest.exists().where(
            RefillRequest.conversation == row.id, RefillRequest.status == "requested"
        )
        if still_open:
            values[Conversation.last_message_at] = now
            if row.first_response_at is None:
                await _answered(row, now, values, staff)
                # Medicines still wait for a decision: the clinic still owes an answer.
                for column in (
                    Conversation.waiting_since,
                    Conversation.due_at,
                    Conversation.warn_at,
                ):
                    values.pop(column)
        else:
            await _answered(row, now, values, staff)
        await Conversation.update(values).where(Conversation.id == row.id)
        await _audit(
            staff, row, "messages.refill_approved" if approve else "messages.refill_denied"
        )
        await _tell_patient(row)


async def queue_document(*, staff: StaffActor, public_id: str, note: str) -> None:
    """A clinician marks the conversation documented in the chart, with a short summary."""
    staff_require(staff.role, "messages.document")
    note = _clean(note, MAX_CHART_NOTE, "note")
    row = await _row(staff, public_id)
    async with write_transaction():
        await Conversation.update(
            {
                Conversation.documented_at: utcnow(),
                Conversation.documented_by_staff: staff.staff_id,
                Conversation.documented_note: note,
            }
        ).where(Conversation.id == row.id)
        await _audit(staff, row, "messages.documented")


async def queue_attachment(
    *, staff: StaffActor, public_id: str, attachment_id: str
) -> dict[str, str]:
    """An attachment of a conversation in a pool this role answers, audited."""
    row = await _row(staff, public_id)
    async with write_transaction():
        found = await attachment_in(row.id, attachment_id)
        await audit_staff(
            staff=staff,
            action="messages.attachment_staff_view",
            patient_id=row.patient,
            resource_type="Binary",
            resource_id=attachment_id,
        )
    return found
