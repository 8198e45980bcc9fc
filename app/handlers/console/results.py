"""The console's results inbox: held results and new ones without a note; a nurse, clinician
or administrator adds the care team's note and may release a held result early."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.services.results.release import INBOX_SHOWS, result_review, results_inbox
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/", name="staff_results")
async def results(
    staff: NamedDependency[StaffActor], show: FromQuery[str] = "all", page: FromQuery[int] = 1
) -> Template:
    show = show if show in INBOX_SHOWS else "all"
    inbox = await results_inbox(staff=staff, show=show, page=page)
    return staff_page("console/results.html", staff=staff, inbox=inbox, show=show)


@post("/{public_id:str}", name="staff_result_review")
async def result_review_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
    show: FromQuery[str] = "all",
    page: FromQuery[int] = 1,
) -> Redirect:
    await result_review(
        staff=staff,
        public_id=public_id,
        comment=data.get("comment", ""),
        release=data.get("release") == "yes",
    )
    # Back to the same filter and page the note was written on.
    show = show if show in INBOX_SHOWS else "all"
    if (show, page) == ("all", 1):
        return redirect_to(request, "staff_results")
    return redirect_to(request, "staff_results", query={"show": show, "page": max(page, 1)})


router = Router(
    "/results",
    guards=[staff_permission("results.review")],
    route_handlers=[results, result_review_post],
)
