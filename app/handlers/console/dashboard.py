"""The dashboard: the clinic's month in figures with the change from last month and a year's
trend, per location; the opportunities they point to; retention of portal users; the follow-up
list of invited patients who have not joined (reminders in one click); the survey's comments;
and the month as CSV. For administrators and practice managers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.i18n import gettext
from app.services.dashboard import dashboard_refresh
from app.services.dashboard.figures import (
    dashboard_csv,
    dashboard_export,
    dashboard_read,
    parse_month,
)
from app.services.dashboard.follow_up import follow_up_list, follow_up_opt_out, follow_up_send
from app.settings import get_settings
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/", name="staff_dashboard")
async def dashboard(
    staff: NamedDependency[StaffActor], month: FromQuery[str] = "", location: FromQuery[str] = ""
) -> Template:
    board = await dashboard_read(staff=staff, month=parse_month(month), location=location)
    return staff_page("console/dashboard.html", staff=staff, board=board)


@get("/export", name="staff_dashboard_export")
async def export(
    staff: NamedDependency[StaffActor], month: FromQuery[str] = "", location: FromQuery[str] = ""
) -> Response[str]:
    board = await dashboard_export(staff=staff, month=parse_month(month), location=location)
    name = f"dashboard-{board.month:%Y-%m}-{board.location or 'all'}.csv"
    return Response(
        dashboard_csv(board, gettext),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@post("/refresh", name="staff_dashboard_refresh")
async def refresh(request: Request[Any, Any, Any]) -> Redirect:
    await dashboard_refresh(months=2)
    return redirect_to(request, "staff_dashboard", notice="dashboard_refreshed")


@get("/follow-up", name="staff_dashboard_follow_up")
async def follow_up(staff: NamedDependency[StaffActor]) -> Template:
    settings = get_settings()
    return staff_page(
        "console/dashboard_follow_up.html",
        staff=staff,
        lines=await follow_up_list(staff=staff),
        days=settings.follow_up_days,
        cap=settings.follow_up_max,
        auto=settings.follow_up_auto,
    )


@post("/follow-up", name="staff_dashboard_follow_up_send")
async def follow_up_send_post(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Redirect:
    chosen = tuple(part for part in data.get("patient", "").split(",") if part)
    sent = await follow_up_send(staff=staff, public_ids=chosen)
    notice = "follow_up_sent" if sent else "follow_up_none"
    return redirect_to(request, "staff_dashboard_follow_up", notice=notice)


@post("/follow-up/{public_id:str}/opt-out", name="staff_dashboard_opt_out")
async def opt_out(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], public_id: FromPath[str]
) -> Redirect:
    await follow_up_opt_out(staff=staff, public_id=public_id)
    return redirect_to(request, "staff_dashboard_follow_up", notice="follow_up_opted_out")


router = Router(
    "/dashboard",
    guards=[staff_permission("dashboard")],
    route_handlers=[dashboard, export, refresh, follow_up, follow_up_send_post, opt_out],
)
