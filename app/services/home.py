"""The signed-in home: what needs attention, in the order patients use the portal most."""

from __future__ import annotations

from dataclasses import dataclass

from app.db import write_transaction
from app.services.access import PatientContext
from app.services.audit import audit_record
from app.services.messaging import unread_count
from app.services.results import ReportHeadline, results_latest
from app.services.scheduling import VisitLine, visits_upcoming


@dataclass(frozen=True)
class HomeSummary:
    unread_messages: int
    next_visit: VisitLine | None
    latest_results: list[ReportHeadline]

    @property
    def new_results(self) -> int:
        return sum(1 for report in self.latest_results if report.is_new)


async def home_summary(context: PatientContext) -> HomeSummary:
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="home.view")
        visits = await visits_upcoming(context, limit=1)
        return HomeSummary(
            unread_messages=await unread_count(context),
            next_visit=visits[0] if visits else None,
            latest_results=await results_latest(context, limit=3),
        )
