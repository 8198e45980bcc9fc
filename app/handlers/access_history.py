"""Access history: everyone other than the patient who looked at or changed the record, with
clinic staff by name and role. The patient themself only (the service refuses a caregiver)."""

from __future__ import annotations

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.response import Template

from app.access import PatientContext
from app.handlers.support import page
from app.services.access_history import access_history
from app.web.guards import account_signed_in


@get("/", name="access_history")
async def history(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "access_history/access_history.html",
        context=context,
        tab="more",
        lines=await access_history(context),
    )


router = Router("/access-history", guards=[account_signed_in], route_handlers=[history])
