"""Caregivers: who can see my record (invite a caregiver, see and end access: the patient
themself only), and /care/{token}, where an invited caregiver accepts. Access history, the
record of who looked, is access_history.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.access import PatientContext
from app.errors import NotFoundError
from app.handlers.support import page, session_lifetime, signed_in_actor, with_session_cookie
from app.services.caregivers import (
    PATIENT_RELATIONSHIPS,
    SCOPES,
    InviteError,
    OpenInvite,
    caregiver_invite,
    caregivers_list,
    grant_revoke,
    invite_accept,
    invite_cancel,
    invite_code_send,
    invite_open,
)
from app.services.phones import country_names
from app.services.rate_limit import CODE_CHECK_PER_IP, rate_limit_ip
from app.services.sign_in import CODE_TTL
from app.settings import get_settings
from app.web.guards import account_signed_in
from app.web.links import redirect_to
from app.web.origin import RequestOrigin

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
INVITE_FIELDS = ("contact", "relationship", "scope", "end_date")


async def _sharing_page(
    context: PatientContext,
    *,
    errors: frozenset[str] = frozenset(),
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    caregivers, invites = await caregivers_list(context)
    return page(
        "caregivers/caregivers.html",
        context=context,
        tab="more",
        caregivers=caregivers,
        invites=invites,
        scopes=SCOPES,
        relationships=PATIENT_RELATIONSHIPS,
        errors=errors,
        typed=typed or {**dict.fromkeys(INVITE_FIELDS, ""), "scope": "appointments_billing"},
        sms_countries=country_names(get_settings().sms_countries),
        invite_cap=get_settings().caregiver_invites_open,
        status_code=status_code,
    )


@get("/", name="sharing")
async def sharing(context: NamedDependency[PatientContext]) -> Template:
    return await _sharing_page(context)


@post("/invite", name="sharing_invite")
async def invite(
    request: Request[Any, Any, Any], context: NamedDependency[PatientContext], data: Form
) -> Template | Redirect:
    typed = {field: data.get(field, "").strip() for field in INVITE_FIELDS}
    end_date: date | None = None
    try:
        end_date = date.fromisoformat(typed["end_date"]) if typed["end_date"] else None
        await caregiver_invite(
            context=context,
            contact=typed["contact"],
            relationship=typed["relationship"],
            scope=typed["scope"],
            end_date=end_date,
            base_url=get_settings().base_url,
        )
    except ValueError:
        return await _sharing_page(
            context, errors=frozenset({"end_date"}), typed=typed, status_code=400
        )
    except InviteError as error:
        return await _sharing_page(
            context,
            errors=frozenset({error.reason}),
            typed=typed,
            status_code=429 if error.reason.startswith("limit") else 400,
        )
    return redirect_to(request, "sharing", notice="caregiver_invited")


@post("/grants/{public_id:str}/revoke", name="sharing_revoke")
async def revoke(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    public_id: FromPath[str],
) -> Redirect:
    await grant_revoke(context=context, grant_public_id=public_id)
    return redirect_to(request, "sharing", notice="caregiver_access_ended")


@post("/invites/{public_id:str}/cancel", name="sharing_invite_cancel")
async def cancel(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    public_id: FromPath[str],
) -> Redirect:
    await invite_cancel(context=context, invite_public_id=public_id)
    return redirect_to(request, "sharing", notice="caregiver_invite_cancelled")


# Accepting ---------------------------------------------------------------------------------

CARE_PREFIX = "/care"
# Only the invitation's pages read it.
CARE_CODE_COOKIE = "portal_care_code"


def _care_page(
    request: Request[Any, Any, Any],
    token: str,
    invite: OpenInvite | None,
    *,
    error: str = "",
    typed_name: str = "",
    status_code: int = 200,
) -> Template:
    return page(
        "caregivers/accept.html",
        invite=invite,
        token=token,
        signed_in=signed_in_actor(request),
        code_sent=bool(request.cookies.get(CARE_CODE_COOKIE)),
        error=error,
        typed_name=typed_name,
        status_code=status_code if invite else 410,
        private=True,
    )


@get("/{token:str}", name="care_invite")
async def care_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    return _care_page(request, token, await invite_open(token))


@post("/{token:str}/code", name="care_code")
async def care_code(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], token: FromPath[str]
) -> Template | Redirect:
    """Send the code that proves the invited phone or email is in the person's hands."""
    try:
        handle = await invite_code_send(
            token=token,
            secret=get_settings().secret_key,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except NotFoundError:
        return _care_page(request, token, None)
    except InviteError as error:
        return _care_page(
            request, token, await invite_open(token), error=error.reason, status_code=429
        )
    response = redirect_to(request, "care_invite", token=token)
    response.set_cookie(
        CARE_CODE_COOKIE,
        handle,
        path=CARE_PREFIX,
        max_age=int(CODE_TTL.total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return response


@post("/{token:str}", name="care_accept")
async def care_accept(
    request: Request[Any, Any, Any],
    origin: NamedDependency[RequestOrigin],
    token: FromPath[str],
    data: Form,
) -> Template | Redirect:
    typed_name = data.get("name", "")
    if not await rate_limit_ip(CODE_CHECK_PER_IP, ip=origin.ip, user_agent=origin.user_agent):
        return _care_page(
            request,
            token,
            await invite_open(token),
            error="code_limit",
            typed_name=typed_name,
            status_code=429,
        )
    try:
        session_token = await invite_accept(
            token=token,
            actor=signed_in_actor(request),
            display_name=typed_name,
            code_handle=request.cookies.get(CARE_CODE_COOKIE, ""),
            code=data.get("code", ""),
            secret=get_settings().secret_key,
            lifetime=session_lifetime(),
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except NotFoundError:
        return _care_page(request, token, None)
    except InviteError as error:
        return _care_page(
            request,
            token,
            await invite_open(token),
            error=error.reason,
            typed_name=typed_name,
            status_code=400,
        )
    # A new account goes on to make a passkey for this device; an existing one goes home.
    response = (
        with_session_cookie(redirect_to(request, "welcome"), session_token)
        if session_token is not None
        else redirect_to(request, "home")
    )
    response.delete_cookie(CARE_CODE_COOKIE, path=CARE_PREFIX)
    return response


router = Router(
    "/",
    route_handlers=[
        # The patient's own page: guarded here, and a caregiver is refused by the service.
        Router(
            "/sharing", guards=[account_signed_in], route_handlers=[sharing, invite, revoke, cancel]
        ),
        # The invitation: anyone holding the link, signed in or not.
        Router(CARE_PREFIX, route_handlers=[care_page, care_code, care_accept]),
    ],
)
