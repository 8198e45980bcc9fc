"""Who can see my record: invite a caregiver, see and revoke access; and /care/{token},
where an invited caregiver accepts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.handlers.support import (
    client_ip,
    page,
    session_lifetime,
    signed_in_actor,
    with_session_cookie,
)
from app.services.access import PatientContext
from app.services.access_history import access_history
from app.services.caregivers import (
    PATIENT_RELATIONSHIPS,
    SCOPES,
    InviteError,
    caregiver_invite,
    caregivers_list,
    grant_revoke,
    invite_accept,
    invite_cancel,
    invite_open,
)
from app.services.errors import NotFoundError
from app.services.phones import country_names
from app.settings import get_settings

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
INVITE_FIELDS = ("contact", "relationship", "scope", "end_date")


async def _sharing_page(
    context: PatientContext,
    *,
    done: str = "",
    errors: frozenset[str] = frozenset(),
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    caregivers, invites = await caregivers_list(context)
    return page(
        "patient/sharing.html",
        context=context,
        tab="more",
        caregivers=caregivers,
        invites=invites,
        scopes=SCOPES,
        relationships=PATIENT_RELATIONSHIPS,
        done=done,
        errors=errors,
        typed=typed or {**dict.fromkeys(INVITE_FIELDS, ""), "scope": "appointments_billing"},
        sms_countries=country_names(get_settings().sms_countries),
        invite_cap=get_settings().caregiver_invites_open,
        status_code=status_code,
    )


@get("/sharing", name="sharing")
async def sharing(context: NamedDependency[PatientContext], done: FromQuery[str] = "") -> Template:
    return await _sharing_page(context, done=done)


@post("/sharing/invite", name="sharing_invite")
async def invite(context: NamedDependency[PatientContext], data: Form) -> Template | Redirect:
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
    return Redirect("/sharing?done=invited", status_code=303)


@post("/sharing/grants/{public_id:str}/revoke", name="sharing_revoke")
async def revoke(context: NamedDependency[PatientContext], public_id: FromPath[str]) -> Redirect:
    await grant_revoke(context=context, grant_public_id=public_id)
    return Redirect("/sharing?done=revoked", status_code=303)


@post("/sharing/invites/{public_id:str}/cancel", name="sharing_invite_cancel")
async def cancel(context: NamedDependency[PatientContext], public_id: FromPath[str]) -> Redirect:
    await invite_cancel(context=context, invite_public_id=public_id)
    return Redirect("/sharing?done=cancelled", status_code=303)


@get("/access-history", name="access_history")
async def history(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "patient/access_history.html",
        context=context,
        tab="more",
        lines=await access_history(context),
    )


# Accepting ---------------------------------------------------------------------------------


@get("/care/{token:str}", name="care_invite")
async def care_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    invite = await invite_open(token)
    return page(
        "care/accept.html",
        invite=invite,
        token=token,
        signed_in=signed_in_actor(request),
        error="",
        status_code=200 if invite else 410,
        private=True,
    )


@post("/care/{token:str}", name="care_accept")
async def care_accept(
    request: Request[Any, Any, Any], token: FromPath[str], data: Form
) -> Template | Redirect:
    actor = signed_in_actor(request)
    try:
        session_token = await invite_accept(
            token=token,
            actor=actor,
            display_name=data.get("name", ""),
            lifetime=session_lifetime(),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except NotFoundError:
        return page(
            "care/accept.html",
            invite=None,
            token=token,
            signed_in=actor,
            error="",
            status_code=410,
            private=True,
        )
    except InviteError as error:
        return page(
            "care/accept.html",
            invite=await invite_open(token),
            token=token,
            signed_in=actor,
            error=error.reason,
            status_code=400,
            private=True,
        )
    if session_token is None:
        return Redirect("/home", status_code=303)
    # A new account: a passkey for this device next.
    return with_session_cookie(Redirect("/welcome", status_code=303), session_token)
