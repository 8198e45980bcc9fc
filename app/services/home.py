"""The signed-in home: what needs attention, in the order patients use the portal most."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.access import PatientContext
from app.clock import utcnow
from app.db import write_transaction
from app.services.audit import audit_record
from app.services.bills import HomeBill, bills_home
from app.services.messages import unread_count
from app.services.outreach import NewsLine, news_latest
from app.services.results import ReportHeadline, results_latest
from app.services.visits import Suggestion, VisitLine, visits_home
from app.tables import LabReport

# Home lists this many upcoming visits.
HOME_VISITS = 3


@dataclass(frozen=True)
class Attention:
    """Something new on another record this account looks after."""

    public_id: str
    first_name: str
    new_results: int
    unread_messages: int


@dataclass(frozen=True)
class HomeSummary:
    unread_messages: int
    next_visit: VisitLine | None
    latest_results: list[ReportHeadline]
    family: list[Attention] = field(default_factory=list)
    # The visit the care team wants booked, with a real free time: Book, then Confirm.
    suggestion: Suggestion | None = None
    # The next few visits (the first is next_visit).
    upcoming: list[VisitLine] = field(default_factory=list)
    # The clinic's latest "What's new" note (closing the loop on feedback), if any.
    news: NewsLine | None = None
    # What the family owes, when the grant opens bills and something is owed.
    bill: HomeBill | None = None

    @property
    def new_results(self) -> int:
        return sum(1 for report in self.latest_results if report.is_new)


async def home_summary(context: PatientContext) -> HomeSummary:
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="home.view")
        visits, suggestion = await visits_home(context, limit=HOME_VISITS)
        return HomeSummary(
            suggestion=suggestion,
            upcoming=visits,
            unread_messages=await unread_count(context),
            next_visit=visits[0] if visits else None,
            latest_results=await results_latest(context, limit=3),
            family=await family_attention(context),
            news=await news_latest(),
            bill=await bills_home(context),
        )


async def family_attention(context: PatientContext) -> list[Attention]:
    """New results and unread messages on the other records this account may open, in one
    query; inside the caller's transaction, with an audit row per record looked at.
    Confidential items never count: on those records this account is a caregiver."""
    others = [p for p in context.profiles if not p.is_current and p.areas & _COUNTED]
    if not others:
        return []
    placeholders = ", ".join("{}" for _ in others)
    rows = await LabReport.raw(
        f"""
        SELECT p.id,
          (SELECT COUNT(*) FROM lab_report r WHERE r.patient = p.id
             AND r.first_viewed_at IS NULL AND r.confidential = false
             AND r.released_at IS NOT NULL AND r.released_at <= {{}}) AS new_results,
          (SELECT COUNT(*) FROM message m JOIN conversation c ON c.id = m.conversation
             WHERE c.patient = p.id AND c.confidential = false AND m.sender = 'clinic'
               AND m.read_by_patient_at IS NULL) AS unread
        FROM patient p WHERE p.id IN ({placeholders})
        """,  # noqa: S608  (only placeholders are formatted in)
        utcnow(),
        *[p.patient_id for p in others],
    )
    counts = {row["id"]: row for row in rows}
    found = []
    for profile in others:
        await audit_record(
            actor=context.actor, patient_id=profile.patient_id, action="home.family_attention"
        )
        row = counts.get(profile.patient_id)
        if row is None:
            continue
        results = int(row["new_results"]) if "results" in profile.areas else 0
        unread = int(row["unread"]) if "messages" in profile.areas else 0
        if results or unread:
            found.append(Attention(profile.public_id, profile.first_name, results, unread))
    return found


_COUNTED = frozenset({"results", "messages"})
