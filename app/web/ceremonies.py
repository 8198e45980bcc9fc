"""The web side of passkey ceremonies, for patients (sign-in, passkeys) and staff (the
console's sign-in and sign-up) alike: the relying party, the challenge cookie, the options
answer and the refusals."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from app import i18n
from app.handlers.support import cookie_name, session_lifetime
from app.services.identity import P, Realm
from app.services.passkeys import (
    CHALLENGE_TTL,
    KnownCredentialError,
    PasskeyError,
    RelyingParty,
    UnverifiedUserError,
    credential_from,
    passkey_sign_in,
)
from app.services.rate_limit import PASSKEY_SIGN_IN_PER_IP, rate_limit_ip
from app.settings import get_settings
from app.templating import current_clinic
from app.web.origin import RequestOrigin

CHALLENGE_COOKIE = "portal_webauthn"


def relying_party() -> RelyingParty:
    settings = get_settings()
    return RelyingParty(id=settings.rp_id, name=current_clinic().name, origin=settings.origin)


def challenge_handle(request: Request[Any, Any, Any]) -> str:
    """The handle of the challenge this browser was given with the options."""
    return request.cookies.get(cookie_name(CHALLENGE_COOKIE), "")


def challenge_used(response: Response[Any]) -> None:
    """A challenge answers once: the browser drops its handle."""
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE))


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


async def passkey_sign_in_answer(
    request: Request[Any, Any, Any], origin: RequestOrigin, realm: Realm[P]
) -> str | Response[dict[str, str]]:
    """Signing in with a passkey, patients and staff alike (each in their realm): within the
    per-address limit, the credential the browser sent checked against this browser's
    challenge. The new session's token, or the refusal to send back."""
    if not await rate_limit_ip(PASSKEY_SIGN_IN_PER_IP, ip=origin.ip, user_agent=origin.user_agent):
        return ceremony_failed(
            i18n.gettext("Too many tries. Please wait a while and try again."), status_code=429
        )
    try:
        return await passkey_sign_in(
            realm,
            rp=relying_party(),
            handle=challenge_handle(request),
            credential=credential_from((await request.body()).decode()),
            lifetime=session_lifetime(),
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("We could not sign you in with that passkey. Please try again.")
        )
