"""create_app(settings) -> Litestar: plugins, middleware, the areas' routers and lifespan in one
place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

import app  # noqa: F401  (sets PICCOLO_CONF before Piccolo looks for it)
from app.access import AgeRules, age_rules_set
from app.assets import STATIC_DIR
from app.clinic import clinic_profile_load
from app.db import close_pool, open_pool
from app.handlers import (
    access_history,
    bills,
    caregivers,
    console,
    demo,
    devices,
    enrollment,
    home,
    join,
    messages,
    notifications,
    outreach,
    passkeys,
    profiles,
    record,
    results,
    sign_in,
    start,
    survey,
    visits,
)
from app.handlers.errors import EXCEPTION_HANDLERS
from app.handlers.support import (
    CSRF_COOKIE,
    cookie_name,
    legacy_cookies,
    provide_actor,
    provide_patient_context,
    provide_staff,
)
from app.security import (
    ForwardedHeaders,
    MaskedCSRFMiddleware,
    forget_cookies_hook,
    full_load_after_sign_in_hook,
    security_headers_hook,
)
from app.services.rate_limit import rate_limit_close
from app.settings import Settings, get_settings
from app.templating import app_callables, build_environment, set_clinic_profile
from app.web.flash import clear_shown_notice_hook, flashed_notice, notice_about
from app.web.identity import IdentifyRequest
from app.web.origin import provide_origin
from app.worker import channels_from_settings, run_worker

log = logging.getLogger("portal")


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    environment = build_environment(auto_reload=settings.debug)
    environment.globals["session_idle_seconds"] = settings.session_idle_minutes * 60
    environment.globals["demo"] = settings.demo
    environment.globals["flashed_notice"] = flashed_notice  # the layout's notice area
    environment.globals["notice_about"] = notice_about  # a field the notice is about
    age_rules_set(AgeRules(settings.proxy_adolescent_age, settings.proxy_adult_age))

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        opened = await open_pool()
        stop = asyncio.Event()
        worker: asyncio.Task[None] | None = None
        try:
            set_clinic_profile(environment, await clinic_profile_load())
            if settings.embedded_worker:
                worker = asyncio.create_task(run_worker(channels_from_settings(settings), stop))
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await rate_limit_close()
            if opened:
                await close_pool()

    # One router per area (app/handlers/<area>.py), each with its path and guards.
    route_handlers: list[Any] = [
        start.router,
        sign_in.router,
        enrollment.router,
        join.router,
        passkeys.router,
        devices.router,
        profiles.router,
        home.router,
        results.router,
        record.router,
        visits.router,
        messages.router,
        caregivers.router,
        access_history.router,
        notifications.router,
        outreach.router,
        bills.router,
        survey.router,
        console.router,
        create_static_files_router(
            path="/static",
            directories=[STATIC_DIR],
            name="static",
            # URLs carry a content hash (?v=), so a year is safe.
            cache_control=CacheControlHeader(max_age=31_536_000, public=True),
            include_in_schema=False,
        ),
    ]
    if settings.demo:
        # Demo sign-in, and the console's outbox (its messages carry links and codes).
        route_handlers.extend([demo.router, console.demo_router])

    portal = Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        debug=settings.debug,
        middleware=[
            DefineMiddleware(ForwardedHeaders, proxies=settings.trusted_proxies),
            # Litestar's CSRF check, with tokens masked per response (security.py: BREACH).
            DefineMiddleware(
                MaskedCSRFMiddleware,
                config=CSRFConfig(
                    secret=settings.secret_key,
                    cookie_name=cookie_name(CSRF_COOKIE),
                    cookie_secure=settings.secure_cookies,
                    cookie_httponly=True,
                    cookie_samesite="lax",
                    # The card processor's webhook carries its own signature instead.
                    # Anchored: Litestar searches the decoded path anywhere for the pattern.
                    exclude=["^/bills/webhook$"],
                ),
            ),
            # Innermost: after the CSRF check, before the guards.
            IdentifyRequest(),
        ],
        dependencies={
            "actor": Provide(provide_actor),
            "context": Provide(provide_patient_context),
            "staff": Provide(provide_staff),
            "origin": Provide(provide_origin, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        # Level 4: about 40% less CPU per page than 6 for about 3% more bytes (bench/README).
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=500, gzip_compress_level=4
        ),
        before_send=[
            security_headers_hook(
                https=settings.secure_cookies,
                stripe_checkout=settings.payment_processor == "stripe",
            ),
            forget_cookies_hook(legacy_cookies()),
            full_load_after_sign_in_hook(cookie_name(CSRF_COOKIE)),
            clear_shown_notice_hook(),
        ],
        openapi_config=None,
    )
    app_callables(environment, portal)
    return portal
