"""The patient's tabs: home, messages, visits, results, more. Each reads through the context."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import htmx_target, page
from app.services.home import home_summary
from app.services.messages import conversations_list
from app.services.results import results_list
from app.services.results.detail import observation_open, report_open
from app.services.visits import visits_list


class PatientPages(Controller):
    @get("/home", name="home")
    async def home(self, context: NamedDependency[PatientContext]) -> Template:
        return page(
            "home/home.html", context=context, tab="home", summary=await home_summary(context)
        )

    @get("/messages", name="messages")
    async def messages(self, context: NamedDependency[PatientContext]) -> Template:
        conversations = await conversations_list(context)
        return page(
            "messages/messages.html", context=context, tab="messages", conversations=conversations
        )

    @get("/visits", name="visits")
    async def visits(
        self,
        request: Request[Any, Any, Any],
        context: NamedDependency[PatientContext],
        show: FromQuery[str] = "upcoming",
    ) -> Template:
        past = show == "past"
        visits = await visits_list(context, past=past)
        # One template, two uses: the whole page, or just the list when htmx swaps it.
        name = (
            "visits/_visit_list.html" if htmx_target(request) == "visits" else "visits/visits.html"
        )
        return page(name, context=context, tab="visits", visits=visits, past=past)

    @get("/results", name="results")
    async def results(self, context: NamedDependency[PatientContext]) -> Template:
        return page(
            "results/results.html",
            context=context,
            tab="results",
            reports=await results_list(context),
        )

    @get("/results/{report_id:str}", name="result_report")
    async def report(
        self, context: NamedDependency[PatientContext], report_id: FromPath[str]
    ) -> Template:
        return page(
            "results/report.html",
            context=context,
            tab="results",
            report=await report_open(context, report_id),
        )

    @get("/results/{report_id:str}/{test_id:str}", name="result_test")
    async def test(
        self,
        context: NamedDependency[PatientContext],
        report_id: FromPath[str],
        test_id: FromPath[str],
    ) -> Template:
        detail = await observation_open(context, report_id, test_id)
        return page("results/test.html", context=context, tab="results", detail=detail)

    @get("/more", name="more")
    async def more(self, context: NamedDependency[PatientContext]) -> Template:
        return page("home/more.html", context=context, tab="more")
