"""The clinic console under /staff: one router, one sub-area per module. Each sub-area's
router carries its role permission as a guard (app/web/guards.py: staff_permission), so the
rule is written once, where its routes are; only signing in is open to anyone.

Staff sessions use their own cookie, read only on these paths (app/handlers/support.py)."""

from __future__ import annotations

from litestar import Router

from app.handlers.console import (
    audit,
    billing,
    campaigns,
    dashboard,
    deliveries,
    join_requests,
    messages,
    patients,
    posters,
    results,
    scheduling,
    sign_in,
)
from app.handlers.support import STAFF_PREFIX

router = Router(
    STAFF_PREFIX,
    route_handlers=[
        sign_in.router,
        patients.router,
        scheduling.router,
        messages.router,
        join_requests.router,
        results.router,
        posters.router,
        audit.router,
        dashboard.router,
        deliveries.router,
        campaigns.router,
        billing.router,
    ],
)
# The demo outbox, mounted in demo mode only: its messages carry links and codes.
demo_router = Router(
    STAFF_PREFIX, route_handlers=[deliveries.outbox_router, campaigns.texts_router]
)
