"""Notification settings: this device's push subscription, the devices that get pushes,
and what to be told about on which channel, with quiet hours."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app import i18n
from app.access import Actor, PatientContext
from app.db import write_transaction
from app.handlers.support import page
from app.notices import send_test_notice
from app.services.audit import audit_record
from app.services.notifications import CHANNELS, CONFIGURABLE, preferences_for, preferences_save
from app.services.passkeys import device_name
from app.services.push import (
    SubscriptionError,
    subscription_remove,
    subscription_save,
    subscriptions_list,
    vapid_public_key,
)
from app.settings import get_settings
from app.web.ceremonies import ceremony_failed
from app.web.flash import flash
from app.web.guards import account_signed_in
from app.web.links import redirect_to, url
from app.web.origin import RequestOrigin


@get("/notifications", name="notifications")
async def settings_page(
    actor: NamedDependency[Actor], context: NamedDependency[PatientContext]
) -> Template:
    return page(
        "notifications/notifications.html",
        context=context,
        tab="more",
        devices=await subscriptions_list(actor=actor),
        prefs=await preferences_for(actor.account_id),
        categories=CONFIGURABLE,
        channels=CHANNELS,
        vapid_key=vapid_public_key(get_settings().vapid_private_key),
    )


@post("/notifications", name="notifications_save")
async def save(request: Request[Any, Any, Any], actor: NamedDependency[Actor]) -> Redirect:
    form = await request.form()
    chosen = {
        category: tuple(c for c in CHANNELS if form.get(f"{category}.{c}") == "on")
        for category in CONFIGURABLE
    }
    quiet = None
    if form.get("quiet") == "on":
        try:
            start = time.fromisoformat(str(form.get("quiet_start", "")))
            end = time.fromisoformat(str(form.get("quiet_end", "")))
        except ValueError:
            return redirect_to(request, "notifications", notice="quiet_hours_unreadable")
        quiet = (start.hour * 60 + start.minute, end.hour * 60 + end.minute)
    async with write_transaction():
        await preferences_save(account_id=actor.account_id, channels=chosen, quiet=quiet)
        await audit_record(actor=actor, action="notifications.preferences_saved")
    return redirect_to(request, "notifications", notice="notifications_saved")


@post("/push/subscriptions", name="push_subscribe", status_code=201)
async def subscribe(
    request: Request[Any, Any, Any],
    actor: NamedDependency[Actor],
    origin: NamedDependency[RequestOrigin],
) -> Response[Any]:
    try:
        data = json.loads((await request.body()).decode())
        keys = data.get("keys", {})
        await subscription_save(
            actor=actor,
            endpoint=str(data.get("endpoint", "")),
            p256dh=str(keys.get("p256dh", "")),
            auth=str(keys.get("auth", "")),
            device_name=device_name(origin.user_agent),
            hosts=get_settings().push_hosts,
        )
    except (ValueError, AttributeError, SubscriptionError):
        return ceremony_failed(i18n.gettext("Notifications could not be turned on here."))
    response = Response({"redirect": url(request, "notifications")}, status_code=201)
    flash(response, "push_subscribed")
    return response


@post("/push/subscriptions/{public_id:str}/remove", name="push_unsubscribe")
async def unsubscribe(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    await subscription_remove(actor=actor, public_id=public_id)
    return redirect_to(request, "notifications", notice="push_removed")


@post("/notifications/test", name="notifications_test")
async def send_test(request: Request[Any, Any, Any], actor: NamedDependency[Actor]) -> Redirect:
    """A notice that says it is a test, through the person's own choices, to see it arrive."""
    used = await send_test_notice(account_id=actor.account_id)
    return redirect_to(
        request, "notifications", notice="test_notice_sent" if used else "test_notice_unsent"
    )


router = Router(
    "/",
    guards=[account_signed_in],
    route_handlers=[settings_page, save, subscribe, unsubscribe, send_test],
)
