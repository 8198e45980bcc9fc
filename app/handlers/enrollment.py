"""Enrollment from a link: confirm the date of birth, then (optionally) add a passkey on the
welcome screen. (The poster join is join.py.)"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.access import PatientContext
from app.handlers.support import page, session_lifetime, with_session_cookie
from app.services.enrollment import EnrollmentError, enroll_confirm, invite_is_open
from app.services.rate_limit import ENROLL_PER_IP, rate_limit_ip
from app.web.guards import account_signed_in
from app.web.links import redirect_to
from app.web.origin import RequestOrigin


def _form(
    token: str, *, error: str = "", typed: str = "", status_code: int = 200, open_: bool = True
) -> Template:
    return page(
        "enrollment/confirm.html",
        token=token,
        error=error,
        typed=typed,
        link_open=open_,
        status_code=status_code,
        private=True,
    )


@get("/enroll/{token:str}", name="enroll")
async def enroll_page(token: FromPath[str]) -> Template:
    if not await invite_is_open(token):
        return _form(token, open_=False, status_code=410)
    return _form(token)


@post("/enroll/{token:str}", name="enroll_confirm")
async def enroll(
    request: Request[Any, Any, Any],
    origin: NamedDependency[RequestOrigin],
    token: FromPath[str],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    typed = data.get("birth_date", "").strip()
    # Counted before anything is checked: guessing dates across many links is what it stops.
    if not await rate_limit_ip(ENROLL_PER_IP, ip=origin.ip, user_agent=origin.user_agent):
        return _form(token, error="limit", typed=typed, status_code=429)
    try:
        birth_date = date.fromisoformat(typed)
    except ValueError:
        return _form(token, error="format", typed=typed, status_code=400)
    try:
        session_token = await enroll_confirm(
            token=token,
            birth_date=birth_date,
            lifetime=session_lifetime(),
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except EnrollmentError as error:
        if error.reason == "expired":
            return _form(token, open_=False, status_code=410)
        return _form(token, error="mismatch", typed=typed, status_code=400)
    return with_session_cookie(redirect_to(request, "welcome"), session_token)


@get("/welcome", name="welcome", guards=[account_signed_in])
async def welcome(context: NamedDependency[PatientContext]) -> Template:
    """The last enrollment screen: a passkey for next time, then the portal."""
    return page("enrollment/welcome.html", context=context)


router = Router("/", route_handlers=[enroll_page, enroll, welcome])
