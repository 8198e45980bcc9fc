"""The Results tab: reports, a report's tests, and one test explained, each read through the
patient context (a caregiver's scope and a teenager's confidential results apply there)."""

from __future__ import annotations

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.results import results_list
from app.services.results.detail import observation_open, report_open
from app.web.guards import account_signed_in


@get("/", name="results")
async def results(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "results/results.html", context=context, tab="results", reports=await results_list(context)
    )


@get("/{report_id:str}", name="result_report")
async def report(context: NamedDependency[PatientContext], report_id: FromPath[str]) -> Template:
    return page(
        "results/report.html",
        context=context,
        tab="results",
        report=await report_open(context, report_id),
    )


@get("/{report_id:str}/{test_id:str}", name="result_test")
async def test(
    context: NamedDependency[PatientContext], report_id: FromPath[str], test_id: FromPath[str]
) -> Template:
    detail = await observation_open(context, report_id, test_id)
    return page("results/test.html", context=context, tab="results", detail=detail)


router = Router("/results", guards=[account_signed_in], route_handlers=[results, report, test])
