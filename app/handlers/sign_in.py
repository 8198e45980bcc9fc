"""Signing in and out. A code by text or email is two plain forms, no JavaScript needed (three
when several people use the contact: the date of birth says who); a passkey is a JSON
ceremony run by static/js/passkeys.js. Signing out works here, or everywhere at once."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from app.access import Actor
from app.handlers.support import (
    SESSION_COOKIE,
    cookie_name,
    page,
    safe_next,
    session_lifetime,
    signed_in_actor,
    with_session_cookie,
)
from app.services.identity import PATIENTS
from app.services.passkeys import (
    passkey_authentication_options,
)
from app.services.rate_limit import CODE_CHECK_PER_IP, rate_limit_ip
from app.services.sessions import session_end, sessions_end_all
from app.services.sign_in import CodeError, code_choose, code_request, code_verify
from app.settings import get_settings
from app.web.ceremonies import (
    challenge_used,
    options_response,
    passkey_sign_in_answer,
    relying_party,
)
from app.web.codes import CODE_COOKIE, code_handle, to_code_check
from app.web.flash import flash
from app.web.guards import account_signed_in
from app.web.links import redirect_to, url
from app.web.origin import RequestOrigin

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

# Wipes what the browser kept from this site (its HTTP cache) as the session ends.
CLEAR_SITE_DATA = {"Clear-Site-Data": '"cache"'}


# A code by text or email -------------------------------------------------------------------


@get("/sign-in/code", name="code_request_form")
async def request_form() -> Template:
    return page("sign_in/code_request.html", error="", typed="", private=True)


@post("/sign-in/code", name="code_request")
async def request_code(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], data: Form
) -> Template | Redirect:
    typed = data.get("contact", "")
    try:
        handle = await code_request(
            contact=typed,
            secret=get_settings().secret_key,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except CodeError as error:
        return page(
            "sign_in/code_request.html",
            error=error.reason,
            typed=typed,
            status_code=400 if error.reason == "contact" else 429,
            private=True,
        )
    return to_code_check(request, handle)


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
async def check_code(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], data: Form
) -> Template | Redirect:
    """The code, or (its second step, for a shared contact) the date of birth."""
    asks_birth_date = "birth_date" in data
    if not await rate_limit_ip(CODE_CHECK_PER_IP, ip=origin.ip, user_agent=origin.user_agent):
        if asks_birth_date:
            return _birth_date_form("limit", data["birth_date"], status_code=429)
        return page("sign_in/code_check.html", error="limit", status_code=429, private=True)
    handle = code_handle(request)
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
                ip=origin.ip,
                user_agent=origin.user_agent,
            )
        else:
            token = await code_verify(
                handle=handle,
                code=data.get("code", ""),
                secret=settings.secret_key,
                lifetime=session_lifetime(),
                ip=origin.ip,
                user_agent=origin.user_agent,
            )
    except CodeError as error:
        if error.reason == "mismatch":
            return _birth_date_form("mismatch", data.get("birth_date", ""), status_code=400)
        status = 429 if error.reason == "locked" else 400
        return page("sign_in/code_check.html", error=error.reason, status_code=status, private=True)
    if token is None:
        return _birth_date_form()
    # Signed in: offer a passkey for this device next (the welcome screen).
    response = with_session_cookie(redirect_to(request, "welcome"), token)
    response.delete_cookie(cookie_name(CODE_COOKIE))
    return response


# A passkey ---------------------------------------------------------------------------------


@post("/sign-in/passkey/options", name="passkey_sign_in_options", status_code=200)
async def passkey_options() -> Response[str]:
    options_json, handle = await passkey_authentication_options(PATIENTS, rp=relying_party())
    return options_response(options_json, handle)


@post("/sign-in/passkey", name="passkey_sign_in", status_code=200)
async def sign_in_with_passkey(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin]
) -> Response[dict[str, str]]:
    token = await passkey_sign_in_answer(request, origin, PATIENTS)
    if isinstance(token, Response):
        return token
    target = safe_next(request.query_params.get("next"), url(request, "home"))
    response = Response({"redirect": target})
    with_session_cookie(response, token)
    challenge_used(response)
    return response


# Signing out -------------------------------------------------------------------------------


def _signed_out(request: Request[Any, Any, Any], notice: str = "signed_out") -> Redirect:
    response = Redirect(url(request, "landing"), status_code=303, headers=CLEAR_SITE_DATA)
    flash(response, notice)
    response.delete_cookie(cookie_name(SESSION_COOKIE))
    return response


@post("/sign-out", name="sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    """Works with an expired session too: the cookie goes either way. The idle timer in
    static/js/portal.js sends `reason=idle`, so the start page says why."""
    actor = signed_in_actor(request)
    if actor is not None:
        await session_end(PATIENTS, principal=actor)
    idle = (await request.form()).get("reason") == "idle"
    return _signed_out(request, "idle_signed_out" if idle else "signed_out")


@post("/sign-out/everywhere", name="sign_out_everywhere", guards=[account_signed_in])
async def sign_out_everywhere(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor]
) -> Redirect:
    await sessions_end_all(PATIENTS, principal=actor)
    return _signed_out(request)


router = Router(
    "/",
    route_handlers=[
        request_form,
        request_code,
        check_form,
        check_code,
        passkey_options,
        sign_in_with_passkey,
        sign_out,
        sign_out_everywhere,
    ],
)
