"""Outreach, the public side: the SMS provider's webhooks (a text to the clinic's number, and
delivery receipts for texts the portal sent) and the campaign link /go/<token>.

The webhooks carry no CSRF token (Twilio cannot have one): each request is verified by its
X-Twilio-Signature instead, against the address Twilio was given (PORTAL_BASE_URL and the
path), and refused with 403 before anything is read when it does not match."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from app.errors import NotFoundError
from app.services.outreach import (
    campaign_click,
    sms_delivery_status,
    sms_inbound,
    twilio_signature_valid,
)
from app.services.outreach.texts import SIGNATURE_HEADER
from app.settings import get_settings
from app.web.links import redirect_to

# Twilio reads the answer as TwiML; an empty one sends nothing (answers go through the outbox).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _signed_form(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    """The POST parameters when Twilio signed them, else None."""
    form = await request.form()
    params = [(str(name), str(value)) for name, value in form.multi_items()]
    settings = get_settings()
    query = request.url.query
    url = f"{settings.base_url}{request.url.path}" + (f"?{query}" if query else "")
    if not twilio_signature_valid(
        auth_token=settings.twilio_auth_token,
        url=url,
        params=params,
        signature=request.headers.get(SIGNATURE_HEADER, ""),
    ):
        return None
    return dict(params)


def _refused() -> Response[str]:
    return Response("Forbidden", status_code=403, media_type=MediaType.TEXT)


@post(
    "/sms",
    name="sms_inbound",
    exclude_from_csrf=True,
    status_code=200,
    include_in_schema=False,
)
async def inbound(request: Request[Any, Any, Any]) -> Response[str]:
    form = await _signed_form(request)
    if form is None:
        return _refused()
    await sms_inbound(
        number=form.get("From", ""),
        body=form.get("Body", ""),
        provider_id=form.get("MessageSid", ""),
    )
    return Response(EMPTY_TWIML, media_type=MediaType.XML)


@post(
    "/sms/status",
    name="sms_status",
    exclude_from_csrf=True,
    status_code=200,
    include_in_schema=False,
)
async def status(request: Request[Any, Any, Any]) -> Response[str]:
    form = await _signed_form(request)
    if form is None:
        return _refused()
    await sms_delivery_status(
        provider_id=form.get("MessageSid", ""), status=form.get("MessageStatus", "")
    )
    return Response("", status_code=204, media_type=MediaType.TEXT)


@get("/go/{token:str}", name="campaign_link", cache=False)
async def go(request: Request[Any, Any, Any], token: FromPath[str]) -> Redirect:
    """A campaign's link: counted once, then on to the screen it is about."""
    target = await campaign_click(token, user_agent=request.headers.get("user-agent", ""))
    if target is None:
        raise NotFoundError("link")
    if target.token is not None:
        return redirect_to(request, target.route, token=target.token)
    return redirect_to(request, target.route)


router = Router("/", route_handlers=[inbound, status, go])
