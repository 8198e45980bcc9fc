"""Route-group guards: who may reach an area, written once on the area's router.

Guards run before a handler's dependencies and body, so nothing in a guarded group can forget
the check. The IdentifyRequest middleware (app/web/identity.py) has already put the signed-in
account or staff member on the request's state. Guards are coroutines: Litestar would run a
plain function in a worker thread."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from app.errors import NotPermittedError
from app.services.console.roles import PERMISSIONS, staff_may

Connection = ASGIConnection[Any, Any, Any, Any]


async def account_signed_in(connection: Connection, _: BaseRouteHandler) -> None:
    """A signed-in account; anyone else is sent to sign in (and back here after)."""
    if getattr(connection.state, "actor", None) is None:
        raise NotAuthorizedException()


def staff_permission(permission: str) -> Guard:
    """A console route group: a signed-in staff member whose role has this permission
    (app/services/console/roles.py). No staff session: off to the console's sign-in; a
    role without it: 403."""
    if permission not in PERMISSIONS:
        raise ValueError(f"No such staff permission: {permission}")

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        staff = getattr(connection.state, "staff", None)
        if staff is None:
            raise NotAuthorizedException()
        if not staff_may(staff.role, permission):
            raise NotPermittedError(permission)

    guard.__name__ = f"staff_permission_{permission.replace('.', '_')}"
    return guard
