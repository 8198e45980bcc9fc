"""Join requests: people who scanned a poster and matched no record (or a minor's), for the
front desk to follow up."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.services.console.patients import join_request_close, join_requests_open
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/", name="staff_join_requests")
async def join_requests(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page(
        "console/join_requests.html", staff=staff, requests=await join_requests_open(staff=staff)
    )


@post("/{public_id:str}/close", name="staff_join_request_close")
async def join_request_close_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
) -> Redirect:
    outcome = data.get("outcome", "")
    if outcome not in ("enrolled", "dismissed"):
        raise NotFoundException()
    await join_request_close(staff=staff, public_id=public_id, outcome=outcome)
    return redirect_to(request, "staff_join_requests")


router = Router(
    "/join-requests",
    guards=[staff_permission("join_requests")],
    route_handlers=[join_requests, join_request_close_post],
)
