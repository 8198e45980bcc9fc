"""Devices: where this account is signed in, with a way to end any of it. (Signing out of
every device at once is in sign_in.py, beside signing out here.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.access import Actor, PatientContext
from app.handlers.support import page
from app.services.sessions import session_end_device, sessions_list
from app.settings import get_settings
from app.web.guards import account_signed_in
from app.web.links import redirect_to


@get("/", name="devices")
async def devices(
    actor: NamedDependency[Actor], context: NamedDependency[PatientContext]
) -> Template:
    settings = get_settings()
    lines = await sessions_list(
        actor=actor, idle_timeout=timedelta(minutes=settings.session_idle_minutes)
    )
    return page("devices/devices.html", context=context, tab="more", devices=lines)


@post("/{public_id:str}/sign-out", name="device_sign_out")
async def sign_out_device(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    await session_end_device(actor=actor, public_id=public_id)
    return redirect_to(request, "devices", notice="device_signed_out")


router = Router("/devices", guards=[account_signed_in], route_handlers=[devices, sign_out_device])
