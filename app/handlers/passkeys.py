"""Passkey ceremonies (JSON, called by static/js/passkeys.js) and the list on the More tab."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app import i18n
from app.access import Actor, PatientContext
from app.handlers.support import (
    client_ip,
    cookie_name,
    page,
    safe_next,
    session_lifetime,
    with_session_cookie,
)
from app.services.identity import PATIENTS
from app.services.passkeys import (
    CHALLENGE_TTL,
    KnownCredentialError,
    LastPasskeyError,
    PasskeyError,
    RelyingParty,
    UnverifiedUserError,
    credential_from,
    device_name,
    passkey_authentication_options,
    passkey_register,
    passkey_registration_options,
    passkey_remove,
    passkey_rename,
    passkey_sign_in,
    passkeys_list,
)
from app.services.rate_limit import PASSKEY_SIGN_IN_PER_IP, rate_limit_ip
from app.settings import get_settings
from app.templating import current_clinic

CHALLENGE_COOKIE = "portal_webauthn"


def relying_party() -> RelyingParty:
    settings = get_settings()
    return RelyingParty(id=settings.rp_id, name=current_clinic().name, origin=settings.origin)


def options_response(options_json: str, handle: str) -> Response[str]:
    response = Response(
        options_json, media_type="application/json", headers={"Cache-Control": "no-store"}
    )
    response.set_cookie(
        cookie_name(CHALLENGE_COOKIE),
        handle,
        max_age=int(CHALLENGE_TTL.total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="strict",
    )
    return response


def ceremony_failed(message: str, status_code: int = 400) -> Response[dict[str, str]]:
    return Response(
        {"error": message}, status_code=status_code, headers={"Cache-Control": "no-store"}
    )


def ceremony_refused(error: PasskeyError, fallback: str) -> Response[dict[str, str]]:
    """What went wrong, in words the person can act on where there is something to do;
    else the one message that tells a forger nothing."""
    if isinstance(error, UnverifiedUserError):
        return ceremony_failed(
            i18n.gettext(
                "Your device did not check that it is you. Turn on a screen lock (a PIN, "
                "fingerprint or face) on this device, or set a PIN on your security key, "
                "then try again."
            )
        )
    if isinstance(error, KnownCredentialError):
        return ceremony_failed(
            i18n.gettext(
                "This passkey is already saved here. Use it to sign in, or make a new "
                "passkey on another device."
            )
        )
    return ceremony_failed(fallback)


@post("/passkeys/options", name="passkey_register_options", status_code=200)
async def register_options(actor: NamedDependency[Actor]) -> Response[str]:
    options_json, handle = await passkey_registration_options(actor=actor, rp=relying_party())
    return options_response(options_json, handle)


@post("/passkeys", name="passkey_register", status_code=201)
async def register(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor]
) -> Response[dict[str, str]]:
    try:
        await passkey_register(
            actor=actor,
            rp=relying_party(),
            handle=request.cookies.get(cookie_name(CHALLENGE_COOKIE), ""),
            credential=credential_from((await request.body()).decode()),
            device_name=device_name(request.headers.get("user-agent", "")),
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("That passkey could not be added. Please try again.")
        )
    redirect = safe_next(request.query_params.get("next"), "/passkeys?passkey=added")
    response = Response({"redirect": redirect}, status_code=201)
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE))
    return response


@post("/passkeys/{public_id:str}/remove", name="passkey_remove")
async def remove(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    form = await request.form()
    end_sessions = form.get("end_sessions") == "yes"
    try:
        await passkey_remove(actor=actor, public_id=public_id, end_its_sessions=end_sessions)
    except LastPasskeyError:
        return Redirect("/passkeys?passkey=last", status_code=303)
    return Redirect("/passkeys?passkey=removed", status_code=303)


@post("/passkeys/{public_id:str}/rename", name="passkey_rename")
async def rename(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], public_id: FromPath[str]
) -> Redirect:
    form = await request.form()
    try:
        await passkey_rename(actor=actor, public_id=public_id, name=str(form.get("name", "")))
    except ValueError:
        return Redirect("/passkeys?passkey=unnamed", status_code=303)
    return Redirect("/passkeys?passkey=renamed", status_code=303)


@post("/sign-in/passkey/options", name="passkey_sign_in_options", status_code=200)
async def sign_in_options() -> Response[str]:
    options_json, handle = await passkey_authentication_options(PATIENTS, rp=relying_party())
    return options_response(options_json, handle)


@post("/sign-in/passkey", name="passkey_sign_in", status_code=200)
async def sign_in(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    ip, user_agent = client_ip(request), request.headers.get("user-agent", "")
    if not await rate_limit_ip(PASSKEY_SIGN_IN_PER_IP, ip=ip, user_agent=user_agent):
        return ceremony_failed(
            i18n.gettext("Too many tries. Please wait a while and try again."), status_code=429
        )
    lifetime = session_lifetime()
    body = (await request.body()).decode()
    try:
        token = await passkey_sign_in(
            PATIENTS,
            rp=relying_party(),
            handle=request.cookies.get(cookie_name(CHALLENGE_COOKIE), ""),
            credential=credential_from(body),
            lifetime=lifetime,
            ip=ip,
            user_agent=user_agent,
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("We could not sign you in with that passkey. Please try again.")
        )
    response = Response({"redirect": safe_next(request.query_params.get("next"), "/home")})
    with_session_cookie(response, token)
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE))
    return response


@get("/passkeys", name="passkeys")
async def passkeys_page(
    actor: NamedDependency[Actor], context: NamedDependency[PatientContext]
) -> Template:
    return page(
        "passkeys/passkeys.html",
        context=context,
        tab="more",
        passkeys=await passkeys_list(actor=actor),
    )
