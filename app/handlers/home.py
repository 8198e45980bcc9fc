"""Home (what is new on this record, and the family's news) and the More tab."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.home import home_summary


@get("/home", name="home")
async def home(context: NamedDependency[PatientContext]) -> Template:
    return page("home/home.html", context=context, tab="home", summary=await home_summary(context))


@get("/more", name="more")
async def more(context: NamedDependency[PatientContext]) -> Template:
    return page("home/more.html", context=context, tab="more")
