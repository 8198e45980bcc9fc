"""What every handler shares: the signed-in actor, the patient context, page rendering."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware.csrf import generate_csrf_token
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app.access import Actor, PatientContext, StaffActor, patient_context_resolve
from app.i18n import negotiate_locale, set_locale
from app.services.identity import PATIENTS, STAFF, P, Realm
from app.services.messages.attachments import IMAGE_TYPES
from app.services.sessions import session_principal
from app.settings import get_settings
from app.web.origin import client_ip

# Base names; on HTTPS the browser gets them as `__Host-` cookies (cookie_name).
SESSION_COOKIE = PATIENTS.cookie
# Staff sessions have their own cookie, read only on the console's paths.
STAFF_COOKIE = STAFF.cookie
CSRF_COOKIE = "portal_csrf"
STAFF_PREFIX = "/staff"
LANGUAGE_COOKIE = "portal_lang"
# Requests that never need to know who is signed in (and so cost no query).
_ANONYMOUS_PREFIXES = ("/static/", "/sw.js", "/healthz", "/manifest.webmanifest", "/favicon")

NO_STORE = {"Cache-Control": "no-store"}
ResponseT = TypeVar("ResponseT", bound=Response[Any])


def cookie_name(base: str) -> str:
    """`__Host-` on HTTPS: the browser then keeps the cookie only if it is Secure, has no
    Domain and has Path=/, so no other host (a neighbouring subdomain) can plant or
    overwrite it: no fixed session, no CSRF cookie of an attacker's choosing. The prefix
    needs Secure, so plain http://localhost development keeps the base name."""
    return f"__Host-{base}" if get_settings().secure_cookies else base


def staff_cookie_path() -> str:
    """`__Host-` needs Path=/; on plain HTTP the staff cookie stays on the console's paths."""
    return "/" if get_settings().secure_cookies else STAFF_PREFIX


def legacy_cookies() -> dict[str, str]:
    """Cookies older versions set without the prefix on HTTPS (name: path), which the
    portal no longer reads: the browser is told to drop them, so their holders are signed
    out cleanly and sign in again."""
    if not get_settings().secure_cookies:
        return {}
    return {SESSION_COOKIE: "/", STAFF_COOKIE: STAFF_PREFIX, CSRF_COOKIE: "/"}


async def identify_request(request: Request[Any, Any, Any]) -> None:
    """Find who is signed in (one query) and choose the language, before the route's guards
    run (the IdentifyRequest middleware, app/web/identity.py). On the console's paths only a
    staff session counts, elsewhere only a patient's."""
    path = request.url.path
    actor: Actor | None = None
    if path.startswith(_ANONYMOUS_PREFIXES):
        pass  # no session lookup, but the manifest is still in the person's language
    elif path == STAFF_PREFIX or path.startswith(STAFF_PREFIX + "/"):
        request.state.staff = await _signed_in(request, STAFF)
        request.state.actor = None
    else:
        actor = request.state.actor = await _signed_in(request, PATIENTS)
    choose_locale(request, actor)


def choose_locale(request: Request[Any, Any, Any], actor: Actor | None) -> None:
    """The page's language: the account's choice, then the language cookie, then the
    browser's Accept-Language."""
    set_locale(
        negotiate_locale(
            account_choice=actor.locale if actor else None,
            cookie_choice=request.cookies.get(LANGUAGE_COOKIE),
            accept_language=request.headers.get("accept-language"),
        )
    )


async def _signed_in(request: Request[Any, Any, Any], realm: Realm[P]) -> P | None:
    """Who the realm's session cookie signs in, if anyone."""
    token = request.cookies.get(cookie_name(realm.cookie))
    if not token:
        return None
    return await session_principal(
        realm,
        token=token,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )


def _required(principal: P | None) -> P:
    if principal is None:
        raise NotAuthorizedException()
    return principal


async def provide_staff(request: Request[Any, Any, Any]) -> StaffActor:
    staff: StaffActor | None = getattr(request.state, "staff", None)
    return _required(staff)


def signed_in_actor(request: Request[Any, Any, Any]) -> Actor | None:
    actor: Actor | None = getattr(request.state, "actor", None)
    return actor


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return _required(signed_in_actor(request))


async def provide_patient_context(request: Request[Any, Any, Any]) -> PatientContext:
    actor = await provide_actor(request)
    context = await patient_context_resolve(actor)
    if context is None:
        raise PermissionDeniedException("No record is linked to this account")
    request.state.patient_context = context
    return context


def htmx_target(request: Request[Any, Any, Any]) -> str | None:
    """The element an htmx request will swap, or None for a normal or boosted navigation."""
    if not isinstance(request, HTMXRequest) or not request.htmx or request.htmx.boosted:
        return None
    return request.htmx.target


def page(
    template_name: str,
    *,
    context: PatientContext | None = None,
    tab: str = "",
    status_code: int = 200,
    private: bool = False,
    **data: Any,
) -> Template:
    """A page. Pages that show health data (or carry a secret, like an enrollment link) are
    never stored by the browser or a cache."""
    return Template(
        template_name=template_name,
        context={"ctx": context, "tab": tab, **data},
        headers=NO_STORE if context is not None or private else None,
        status_code=status_code,
    )


def file_response(found: dict[str, str], data: bytes) -> Response[bytes]:
    """A stored attachment as its own response: a photo may show in the page, a PDF only
    downloads; the browser must not guess another type, keep a copy, or run anything."""
    disposition = "inline" if found["media_type"] in IMAGE_TYPES else "attachment"
    return Response(
        data,
        media_type=found["media_type"],
        headers={
            **NO_STORE,
            "Content-Disposition": f'{disposition}; filename="{found["filename"]}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def safe_next(path: str | None, default: str = "/") -> str:
    """Only a path on this site: never another origin (open redirects).

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    "/\t/evil.example" would become "//evil.example": any of those refuses the path."""
    if not path or not path.startswith("/") or path.startswith("//"):
        return default
    if "\\" in path or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in path):
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path


def session_lifetime() -> timedelta:
    return timedelta(hours=get_settings().session_max_hours)


def with_session_cookie(response: ResponseT, token: str) -> ResponseT:
    """Hand a new session to the browser: HttpOnly, SameSite=Lax, Secure on HTTPS."""
    response.set_cookie(
        cookie_name(SESSION_COOKIE),
        token,
        max_age=int(session_lifetime().total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return with_new_csrf_token(response)


def with_staff_cookie(response: ResponseT, token: str) -> ResponseT:
    response.set_cookie(
        cookie_name(STAFF_COOKIE),
        token,
        path=staff_cookie_path(),
        max_age=int(session_lifetime().total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return with_new_csrf_token(response)


def with_new_csrf_token(response: ResponseT) -> ResponseT:
    """A fresh CSRF token whenever a session starts: one learned before sign-in (on a
    shared computer, or planted) is worthless after it. Same attributes as the CSRF
    middleware's own cookie (main.py)."""
    settings = get_settings()
    response.set_cookie(
        cookie_name(CSRF_COOKIE),
        generate_csrf_token(settings.secret_key),
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )
    return response
