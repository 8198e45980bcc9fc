"""Signing out (here, one device, everywhere), devices, and whose record this device shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.access import Actor, PatientContext
from app.handlers.support import SESSION_COOKIE, cookie_name, page, safe_next, signed_in_actor
from app.services.identity import PATIENTS
from app.services.profiles import profile_switch
from app.services.sessions import (
    session_end,
    session_end_device,
    sessions_end_all,
    sessions_list,
)
from app.settings import get_settings

# Wipes what the browser kept from this site (its HTTP cache) as the session ends.
CLEAR_SITE_DATA = {"Clear-Site-Data": '"cache"'}


def _signed_out() -> Redirect:
    response = Redirect("/?signed_out=1", status_code=303, headers=CLEAR_SITE_DATA)
    response.delete_cookie(cookie_name(SESSION_COOKIE))
    return response


@post("/sign-out", name="sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    """Works with an expired session too: the cookie goes either way."""
    actor = signed_in_actor(request)
    if actor is not None:
        await session_end(PATIENTS, principal=actor)
    return _signed_out()


@post("/profile", name="profile_switch")
async def switch_profile(
    actor: NamedDependency[Actor],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """One tap on a name in the switcher: that person's record, on the same tab."""
    await profile_switch(actor=actor, patient_public_id=data.get("patient", ""))
    return Redirect(safe_next(data.get("next"), "/home"), status_code=303)


@get("/devices", name="devices")
async def devices(
    actor: NamedDependency[Actor], context: NamedDependency[PatientContext]
) -> Template:
    """Where this account is signed in, with a way to end any of it."""
    settings = get_settings()
    lines = await sessions_list(
        actor=actor, idle_timeout=timedelta(minutes=settings.session_idle_minutes)
    )
    return page("devices/devices.html", context=context, tab="more", devices=lines)


@post("/devices/{public_id:str}/sign-out", name="device_sign_out")
async def sign_out_device(actor: NamedDependency[Actor], public_id: FromPath[str]) -> Redirect:
    await session_end_device(actor=actor, public_id=public_id)
    return Redirect("/devices?signed_out=1", status_code=303)


@post("/sign-out/everywhere", name="sign_out_everywhere")
async def sign_out_everywhere(actor: NamedDependency[Actor]) -> Redirect:
    await sessions_end_all(PATIENTS, principal=actor)
    return _signed_out()
