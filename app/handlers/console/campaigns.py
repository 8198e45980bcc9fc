"""The console's outreach under /staff/campaigns: campaigns (a segment, a template, a preview,
a schedule, then their results) and the "What's new" notes on patients' home, for managers
and administrators. In demo mode, /staff/texts stands in for a phone: staff text the clinic
as a number, and the portal answers as it would a real text."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.clinic import clinic_profile
from app.services.demo.clinic import demo_phones
from app.services.outreach.campaigns import (
    SEGMENTS,
    TEMPLATES,
    CampaignError,
    campaign_create,
    campaign_open,
    campaign_schedule,
    campaigns_list,
)
from app.services.outreach.news import news_list, news_publish, news_withdraw
from app.services.outreach.texts import sms_inbound
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _list_page(staff: StaffActor, campaigns: Any, **data: Any) -> Template:
    return staff_page(
        "console/campaigns.html",
        staff=staff,
        campaigns=campaigns,
        segments=SEGMENTS,
        templates=TEMPLATES,
        **data,
    )


@get("", name="staff_campaigns")
async def campaigns(staff: NamedDependency[StaffActor]) -> Template:
    return _list_page(staff, await campaigns_list(staff=staff), typed={}, error="")


@post("", name="staff_campaign_create")
async def campaign_new(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Redirect | Template:
    try:
        public_id = await campaign_create(
            staff=staff,
            name=data.get("name", ""),
            segment=data.get("segment", ""),
            template=data.get("template", ""),
        )
    except CampaignError as error:
        page = _list_page(staff, await campaigns_list(staff=staff), typed=data, error=error.reason)
        page.status_code = 400
        return page
    return redirect_to(request, "staff_campaign", campaign_id=public_id, notice="campaign_created")


def _campaign_page(view: Any, staff: StaffActor, error: str = "", status: int = 200) -> Template:
    page = staff_page(
        "console/campaign.html",
        staff=staff,
        view=view,
        segments=SEGMENTS,
        templates=TEMPLATES,
        error=error,
    )
    page.status_code = status
    return page


@get("/{campaign_id:str}", name="staff_campaign")
async def campaign(staff: NamedDependency[StaffActor], campaign_id: FromPath[str]) -> Template:
    return _campaign_page(await campaign_open(staff=staff, public_id=campaign_id), staff)


def _send_at(day: str, clock: str) -> datetime | None:
    """The clinic's local date and time typed, in UTC; None for "now" (both empty)."""
    if not day and not clock:
        return None
    moment = datetime.fromisoformat(f"{day}T{clock or '09:00'}")
    return moment.replace(tzinfo=clinic_profile().timezone)


@post("/{campaign_id:str}/schedule", name="staff_campaign_schedule")
async def schedule(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    campaign_id: FromPath[str],
    data: Form,
) -> Redirect | Template:
    try:
        try:
            send_at = _send_at(data.get("day", ""), data.get("time", ""))
            per_hour = int(data.get("per_hour", "") or 200)
        except ValueError as error:
            raise CampaignError("schedule") from error
        await campaign_schedule(
            staff=staff, public_id=campaign_id, send_at=send_at, per_hour=per_hour
        )
    except CampaignError as error:
        view = await campaign_open(staff=staff, public_id=campaign_id)
        return _campaign_page(view, staff, error=error.reason, status=400)
    return redirect_to(
        request, "staff_campaign", campaign_id=campaign_id, notice="campaign_scheduled"
    )


@get("/news", name="staff_news")
async def news(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page(
        "console/news.html", staff=staff, notes=await news_list(staff=staff), typed={}, error=""
    )


@post("/news", name="staff_news_publish")
async def news_add(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Redirect | Template:
    try:
        await news_publish(
            staff=staff,
            title=data.get("title", ""),
            body=data.get("body", ""),
            title_es=data.get("title_es", ""),
            body_es=data.get("body_es", ""),
        )
    except CampaignError as error:
        page = staff_page(
            "console/news.html",
            staff=staff,
            notes=await news_list(staff=staff),
            typed=data,
            error=error.reason,
        )
        page.status_code = 400
        return page
    return redirect_to(request, "staff_news", notice="news_published")


@post("/news/{note_id:str}/withdraw", name="staff_news_withdraw")
async def news_remove(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], note_id: FromPath[str]
) -> Redirect:
    await news_withdraw(staff=staff, public_id=note_id)
    return redirect_to(request, "staff_news", notice="news_withdrawn")


router = Router(
    "/campaigns",
    guards=[staff_permission("campaigns")],
    route_handlers=[campaigns, campaign_new, campaign, schedule, news, news_add, news_remove],
)


# The demo's phone ---------------------------------------------------------------------------

TEXT_OUTCOMES = {
    "stop": "text_stop",
    "start": "text_start",
    "help": "text_help",
    "confirmed": "text_confirmed",
    "cancelled": "text_cancelled",
    "not_changed": "text_not_changed",
    "message": "text_message",
    "unknown": "text_unknown",
}


@get("", name="staff_texts")
async def texts(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page("console/texts.html", staff=staff, phones=await demo_phones())


@post("", name="staff_text_send")
async def text_send(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Redirect:
    """As if the number had texted the clinic (demo mode only: no signature to check)."""
    number, body = data.get("number", "").strip(), data.get("body", "")
    if not number.startswith("+") or not number[1:].isdigit() or not body.strip():
        return redirect_to(request, "staff_texts", notice="text_unreadable")
    outcome = await sms_inbound(number=number, body=body)
    return redirect_to(request, "staff_texts", notice=TEXT_OUTCOMES[outcome])


# Registered in demo mode only (app/handlers/console/__init__.py).
texts_router = Router(
    "/texts", guards=[staff_permission("texts.simulate")], route_handlers=[texts, text_send]
)
