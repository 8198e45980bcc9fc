"""create_app(settings) -> Litestar: plugins, middleware, routes and lifespan in one place."""

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
    caregivers,
    demo,
    devices,
    enrollment,
    home,
    join,
    messages,
    notifications,
    passkeys,
    profiles,
    results,
    sign_in,
    start,
    visits,
)
from app.handlers.console import audit as console_audit
from app.handlers.console import deliveries as console_deliveries
from app.handlers.console import join_requests as console_join_requests
from app.handlers.console import patients as console_patients
from app.handlers.console import posters as console_posters
from app.handlers.console import results as console_results
from app.handlers.console import sign_in as console_sign_in
from app.handlers.errors import EXCEPTION_HANDLERS
from app.handlers.support import (
    CSRF_COOKIE,
    cookie_name,
    identify_request,
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
from app.templating import build_environment, set_clinic_profile
from app.worker import channels_from_settings, run_worker

log = logging.getLogger("portal")


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    environment = build_environment()
    environment.globals["session_idle_seconds"] = settings.session_idle_minutes * 60
    environment.globals["demo"] = settings.demo
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

    route_handlers: list[Any] = [
        start.landing,
        start.offline,
        start.healthz,
        start.manifest,
        start.service_worker,
        start.favicon,
        start.language,
        sign_in.request_form,
        sign_in.request_code,
        sign_in.check_form,
        sign_in.check_code,
        sign_in.passkey_options,
        sign_in.sign_in_with_passkey,
        sign_in.sign_out,
        sign_in.sign_out_everywhere,
        enrollment.enroll_page,
        enrollment.enroll,
        enrollment.welcome,
        join.join_page,
        join.join,
        passkeys.passkeys_page,
        passkeys.register_options,
        passkeys.register,
        passkeys.remove,
        passkeys.rename,
        devices.devices,
        devices.sign_out_device,
        profiles.switch_profile,
        home.home,
        home.more,
        results.results,
        results.report,
        results.test,
        visits.visits,
        messages.messages,
        caregivers.sharing,
        caregivers.invite,
        caregivers.revoke,
        caregivers.cancel,
        caregivers.care_page,
        caregivers.care_code,
        caregivers.care_accept,
        access_history.history,
        notifications.settings_page,
        notifications.save,
        notifications.subscribe,
        notifications.unsubscribe,
        notifications.send_test,
        console_sign_in.sign_in_page,
        console_sign_in.sign_in_options,
        console_sign_in.sign_in,
        console_sign_in.enroll_page,
        console_sign_in.enroll_options,
        console_sign_in.enroll,
        console_sign_in.sign_out,
        console_patients.home,
        console_patients.patient,
        console_patients.invite,
        console_patients.own_contacts,
        console_patients.guardian,
        console_patients.grant_revoke,
        console_join_requests.join_requests,
        console_join_requests.join_request_close_post,
        console_audit.audit,
        console_results.results,
        console_results.result_review_post,
        console_posters.posters,
        console_posters.poster,
        console_deliveries.deliveries,
        console_deliveries.delivery_retry_post,
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
        # Demo sign-in, and the outbox page (its messages carry links and codes).
        route_handlers.extend([demo.DemoSignIn, console_deliveries.outbox])

    return Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        debug=settings.debug,
        before_request=identify_request,
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
                ),
            ),
        ],
        dependencies={
            "actor": Provide(provide_actor),
            "context": Provide(provide_patient_context),
            "staff": Provide(provide_staff),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=500, gzip_compress_level=6
        ),
        before_send=[
            security_headers_hook(https=settings.secure_cookies),
            forget_cookies_hook(legacy_cookies()),
            full_load_after_sign_in_hook(cookie_name(CSRF_COOKIE)),
        ],
        openapi_config=None,
    )
