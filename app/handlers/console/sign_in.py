"""Staff sign-in and sign-up with a passkey, and signing out. Open to anyone: these pages are
how staff get in. Staff sessions have their own cookie, read only under /staff."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app import i18n
from app.access import StaffActor
from app.handlers.support import (
    STAFF_COOKIE,
    cookie_name,
    session_lifetime,
    staff_cookie_path,
    with_staff_cookie,
)
from app.services.console.staff_auth import (
    staff_enroll,
    staff_invite_open,
    staff_registration_options,
)
from app.services.identity import STAFF
from app.services.passkeys import (
    PasskeyError,
    credential_from,
    device_name,
    passkey_authentication_options,
)
from app.services.sessions import session_end
from app.web.ceremonies import (
    ceremony_failed,
    ceremony_refused,
    challenge_handle,
    challenge_used,
    options_response,
    passkey_sign_in_answer,
    relying_party,
)
from app.web.console import staff_next, staff_page
from app.web.links import redirect_to, url
from app.web.origin import RequestOrigin


@get("/sign-in", name="staff_sign_in_page")
async def sign_in_page(request: Request[Any, Any, Any]) -> Template:
    return staff_page("console/sign_in.html", staff=None, next_path=staff_next(request))


@post("/sign-in/options", name="staff_sign_in_options", status_code=200)
async def sign_in_options() -> Response[str]:
    options_json, handle = await passkey_authentication_options(STAFF, rp=relying_party())
    return options_response(options_json, handle)


@post("/sign-in", name="staff_sign_in", status_code=200)
async def sign_in(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin]
) -> Response[dict[str, str]]:
    token = await passkey_sign_in_answer(request, origin, STAFF)
    if isinstance(token, Response):
        return token
    response = Response({"redirect": staff_next(request)})
    challenge_used(response)
    return with_staff_cookie(response, token)


@get("/enroll/{token:str}", name="staff_enroll_page")
async def enroll_page(token: FromPath[str]) -> Template:
    invite = await staff_invite_open(token)
    return staff_page(
        "console/enroll.html",
        staff=None,
        invite=invite,
        token=token,
        status_code=200 if invite else 410,
    )


@post("/enroll/{token:str}/options", name="staff_enroll_options", status_code=200)
async def enroll_options(token: FromPath[str]) -> Response[Any]:
    try:
        options_json, handle = await staff_registration_options(token=token, rp=relying_party())
    except PasskeyError:
        return ceremony_failed(i18n.gettext("This link no longer works. Ask your administrator."))
    return options_response(options_json, handle)


@post("/enroll/{token:str}", name="staff_enroll", status_code=201)
async def enroll(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], token: FromPath[str]
) -> Response[Any]:
    try:
        session_token = await staff_enroll(
            token=token,
            rp=relying_party(),
            handle=challenge_handle(request),
            credential=credential_from((await request.body()).decode()),
            device_name=device_name(origin.user_agent),
            lifetime=session_lifetime(),
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("That passkey could not be added. Please try again.")
        )
    response = Response({"redirect": url(request, "staff_home")}, status_code=201)
    challenge_used(response)
    return with_staff_cookie(response, session_token)


@post("/sign-out", name="staff_sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    """Works with an expired session too: the cookie goes either way."""
    staff: StaffActor | None = getattr(request.state, "staff", None)
    if staff is not None:
        await session_end(STAFF, principal=staff)
    response = redirect_to(request, "staff_sign_in_page", notice="signed_out")
    response.delete_cookie(cookie_name(STAFF_COOKIE), path=staff_cookie_path())
    return response


router = Router(
    "/",
    route_handlers=[
        sign_in_page,
        sign_in_options,
        sign_in,
        enroll_page,
        enroll_options,
        enroll,
        sign_out,
    ],
)
