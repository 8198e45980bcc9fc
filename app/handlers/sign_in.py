"""Sign in with a code by text or email: two plain forms, no JavaScript needed (three when
several people use the contact: the date of birth says who)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from app.handlers.support import (
    client_ip,
    cookie_name,
    page,
    session_lifetime,
    with_session_cookie,
)
from app.services.rate_limit import CODE_CHECK_PER_IP, rate_limit_ip
from app.services.sign_in import CODE_TTL, CodeError, code_choose, code_request, code_verify
from app.settings import get_settings

CODE_COOKIE = "portal_code"
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/sign-in/code", name="code_request_form")
async def request_form() -> Template:
    return page("sign_in/code_request.html", error="", typed="", private=True)


@post("/sign-in/code", name="code_request")
async def request_code(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    typed = data.get("contact", "")
    try:
        handle = await code_request(
            contact=typed,
            secret=get_settings().secret_key,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except CodeError as error:
        return page(
            "sign_in/code_request.html",
            error=error.reason,
            typed=typed,
            status_code=400 if error.reason == "contact" else 429,
            private=True,
        )
    return to_code_check(handle)


def to_code_check(handle: str, query: str = "") -> Redirect:
    """On to the code form, the browser holding the handle of its pending code."""
    response = Redirect(f"/sign-in/code/check{query}", status_code=303)
    response.set_cookie(
        cookie_name(CODE_COOKIE),
        handle,
        max_age=int(CODE_TTL.total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return response


@get("/sign-in/code/check", name="code_check_form")
async def check_form() -> Template:
    return page("sign_in/code_check.html", error="", private=True)


def _birth_date_form(error: str = "", typed: str = "", status_code: int = 200) -> Template:
    return page(
        "sign_in/code_birth_date.html",
        error=error,
        typed=typed,
        status_code=status_code,
        private=True,
    )


@post("/sign-in/code/check", name="code_check")
async def check_code(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    """The code, or (its second step, for a shared contact) the date of birth."""
    ip, user_agent = client_ip(request), request.headers.get("user-agent", "")
    asks_birth_date = "birth_date" in data
    if not await rate_limit_ip(CODE_CHECK_PER_IP, ip=ip, user_agent=user_agent):
        if asks_birth_date:
            return _birth_date_form("limit", data["birth_date"], status_code=429)
        return page("sign_in/code_check.html", error="limit", status_code=429, private=True)
    handle = request.cookies.get(cookie_name(CODE_COOKIE), "")
    settings = get_settings()
    try:
        if asks_birth_date:
            typed = data["birth_date"].strip()
            try:
                birth_date = date.fromisoformat(typed)
            except ValueError:
                return _birth_date_form("format", typed, status_code=400)
            token: str | None = await code_choose(
                handle=handle,
                birth_date=birth_date,
                secret=settings.secret_key,
                lifetime=session_lifetime(),
                ip=ip,
                user_agent=user_agent,
            )
        else:
            token = await code_verify(
                handle=handle,
                code=data.get("code", ""),
                secret=settings.secret_key,
                lifetime=session_lifetime(),
                ip=ip,
                user_agent=user_agent,
            )
    except CodeError as error:
        if error.reason == "mismatch":
            return _birth_date_form("mismatch", data.get("birth_date", ""), status_code=400)
        status = 429 if error.reason == "locked" else 400
        return page("sign_in/code_check.html", error=error.reason, status_code=status, private=True)
    if token is None:
        return _birth_date_form()
    # Signed in: offer a passkey for this device next (the welcome screen).
    response = with_session_cookie(Redirect("/welcome", status_code=303), token)
    response.delete_cookie(cookie_name(CODE_COOKIE))
    return response
