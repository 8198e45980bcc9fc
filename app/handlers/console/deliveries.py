"""What did not reach people: texts, emails and pushes that gave up ("Not delivered"), and, in
demo mode only, the outbox of everything the clinic sent (its messages carry links and codes)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.services.console.patients import deliveries_failing, delivery_retry, outbox_recent
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to


@get("/", name="staff_deliveries")
async def deliveries(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page(
        "console/deliveries.html", staff=staff, problems=await deliveries_failing(staff=staff)
    )


@post("/{public_id:str}/retry", name="staff_delivery_retry")
async def delivery_retry_post(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], public_id: FromPath[str]
) -> Redirect:
    await delivery_retry(staff=staff, public_id=public_id)
    return redirect_to(request, "staff_deliveries")


@get("/", name="staff_outbox")
async def outbox(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page("console/outbox.html", staff=staff, messages=await outbox_recent(staff=staff))


router = Router(
    "/deliveries",
    guards=[staff_permission("deliveries")],
    route_handlers=[deliveries, delivery_retry_post],
)
# Registered in demo mode only (app/handlers/console/__init__.py).
outbox_router = Router("/outbox", guards=[staff_permission("outbox")], route_handlers=[outbox])
