"""The start area, open to anyone: the landing page, the offline page, the manifest, the
service worker, the icon, the health check and the language choice."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import File, Redirect, Response, Template

from app import i18n
from app.assets import STATIC_DIR, service_worker_script
from app.clock import utcnow
from app.handlers.support import LANGUAGE_COOKIE, page, safe_next, signed_in_actor
from app.services.accounts import account_set_locale
from app.services.audit import audit_backlog
from app.settings import get_settings
from app.templating import current_clinic
from app.web.links import redirect_to, url


@get("/", name="landing", cache=False)
async def landing(request: Request[Any, Any, Any]) -> Template | Redirect:
    if signed_in_actor(request) is not None:
        return redirect_to(request, "home")
    return page("start/landing.html", demo=get_settings().demo)


@get("/offline", name="offline")
async def offline() -> Template:
    """Shown by the service worker when a page cannot be reached. Holds no health data."""
    return page("start/offline.html")


@get("/healthz", name="healthz", cache=False)
async def healthz() -> Response[dict[str, str]]:
    """503 when the database cannot be reached. A sealer that falls behind (audit rows older
    than PORTAL_AUDIT_SEAL_MAX_SECONDS still unsealed) says "degraded" with a 200: this
    process still serves, and taking every server out of a load balancer would not help."""
    try:
        backlog = await audit_backlog()
    except Exception:  # any failure to reach the database is the answer
        return Response({"status": "error", "database": "unreachable"}, status_code=503)
    limit = timedelta(seconds=get_settings().audit_seal_max_seconds)
    if backlog.age(utcnow()) > limit:
        return Response({"status": "degraded", "database": "ok", "audit": "behind"})
    return Response({"status": "ok", "database": "ok", "audit": "ok"})


@get("/manifest.webmanifest", name="manifest")
async def manifest() -> Response[dict[str, Any]]:
    name = current_clinic().name
    body = {
        "id": "/",
        "name": name,
        "short_name": i18n.gettext("Portal"),
        "description": i18n.gettext("Your health record, messages, visits and bills."),
        "start_url": "/?source=homescreen",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5f73",
        "lang": i18n.current_locale(),
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": "/static/icons/maskable-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        body,
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@get("/sw.js", name="service_worker")
async def service_worker() -> Response[str]:
    return Response(
        service_worker_script(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@get("/favicon.ico", name="favicon", include_in_schema=False)
async def favicon() -> File:
    return File(
        STATIC_DIR / "icons" / "icon-192.png",
        media_type="image/png",
        content_disposition_type="inline",
    )


@post("/language", name="language")
async def language(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """Choose a language: kept on the account when signed in, in a cookie either way."""
    choice = data.get("locale", "")
    locale = choice if choice in i18n.SUPPORTED_LOCALES else None
    actor = signed_in_actor(request)
    if actor is not None:
        await account_set_locale(actor=actor, locale=locale)
    response = Redirect(safe_next(data.get("next"), url(request, "landing")), status_code=303)
    if locale:
        response.set_cookie(
            LANGUAGE_COOKIE,
            locale,
            max_age=31_536_000,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
    else:
        response.delete_cookie(LANGUAGE_COOKIE)
    return response


router = Router(
    "/",
    route_handlers=[landing, offline, healthz, manifest, service_worker, favicon, language],
)
