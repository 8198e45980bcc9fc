"""Home (what is new on this record, and the family's news) and the More tab."""

from __future__ import annotations

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.home import home_summary
from app.web.guards import account_signed_in


@get("/home", name="home")
async def home(context: NamedDependency[PatientContext]) -> Template:
    return page("home/home.html", context=context, tab="home", summary=await home_summary(context))


@get("/more", name="more")
async def more(context: NamedDependency[PatientContext]) -> Template:
    return page("home/more.html", context=context, tab="more")


router = Router("/", guards=[account_signed_in], route_handlers=[home, more])
