"""The account's passkeys: the list on the More tab, adding one (a JSON ceremony run by
static/js/passkeys.js), renaming and removing. Signing in with one is in sign_in.py."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app import i18n
from app.access import Actor, PatientContext
from app.handlers.support import page, safe_next
from app.services.passkeys import (
    LastPasskeyError,
    PasskeyError,
    credential_from,
    device_name,
    passkey_register,
    passkey_registration_options,
    passkey_remove,
    passkey_rename,
    passkeys_list,
)
from app.web.ceremonies import (
    ceremony_refused,
    challenge_handle,
    challenge_used,
    options_response,
    relying_party,
)
from app.web.flash import flash
from app.web.guards import account_signed_in
from app.web.links import redirect_to, url
from app.web.origin import RequestOrigin


@get("/", name="passkeys")
async def passkeys_page(
    actor: NamedDependency[Actor], context: NamedDependency[PatientContext]
) -> Template:
    return page(
        "passkeys/passkeys.html",
        context=context,
        tab="more",
        passkeys=await passkeys_list(actor=actor),
    )


@post("/options", name="passkey_register_options", status_code=200)
async def register_options(actor: NamedDependency[Actor]) -> Response[str]:
    options_json, handle = await passkey_registration_options(actor=actor, rp=relying_party())
    return options_response(options_json, handle)


@post("/", name="passkey_register", status_code=201)
async def register(
    request: Request[Any, Any, Any],
    actor: NamedDependency[Actor],
    origin: NamedDependency[RequestOrigin],
) -> Response[dict[str, str]]:
    try:
        await passkey_register(
            actor=actor,
            rp=relying_party(),
            handle=challenge_handle(request),
            credential=credential_from((await request.body()).decode()),
            device_name=device_name(origin.user_agent),
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("That passkey could not be added. Please try again.")
        )
    # Onwards (the welcome screen goes home), or back to the list, which says it worked.
    onwards = safe_next(request.query_params.get("next"), "")
    response = Response({"redirect": onwards or url(request, "passkeys")}, status_code=201)
    if not onwards:
        flash(response, "passkey_added")
    challenge_used(response)
    return response


@post("/{public_id:str}/remove", name="passkey_remove")
async def remove(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    form = await request.form()
    end_sessions = form.get("end_sessions") == "yes"
    try:
        await passkey_remove(actor=actor, public_id=public_id, end_its_sessions=end_sessions)
    except LastPasskeyError:
        return redirect_to(request, "passkeys", notice="passkey_last")
    return redirect_to(request, "passkeys", notice="passkey_removed")


@post("/{public_id:str}/rename", name="passkey_rename")
async def rename(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    form = await request.form()
    try:
        await passkey_rename(actor=actor, public_id=public_id, name=str(form.get("name", "")))
    except ValueError:
        return redirect_to(request, "passkeys", notice="passkey_unnamed")
    return redirect_to(request, "passkeys", notice="passkey_renamed")


router = Router(
    "/passkeys",
    guards=[account_signed_in],
    route_handlers=[passkeys_page, register_options, register, remove, rename],
)
