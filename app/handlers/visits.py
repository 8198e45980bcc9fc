"""The Visits tab: upcoming and past visits, read through the patient context."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import htmx_target, page
from app.services.visits import visits_list
from app.web.guards import account_signed_in


@get("/", name="visits")
async def visits(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    show: FromQuery[str] = "upcoming",
) -> Template:
    past = show == "past"
    lines = await visits_list(context, past=past)
    # One template, two uses: the whole page, or just the list when htmx swaps it.
    name = "visits/_visit_list.html" if htmx_target(request) == "visits" else "visits/visits.html"
    return page(name, context=context, tab="visits", visits=lines, past=past)


router = Router("/visits", guards=[account_signed_in], route_handlers=[visits])
