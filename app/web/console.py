"""What the console's pages share: the frame every page is drawn in, and the way back after
signing in."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from app.access import StaffActor
from app.handlers.support import STAFF_PREFIX, page, safe_next
from app.services.console.roles import staff_may


def staff_page(template_name: str, *, staff: StaffActor | None, **data: Any) -> Template:
    """Console pages show patients' details: never stored by the browser or a cache. The
    template asks `staff_may` only to leave out links the role cannot use; the route
    groups' guards are what refuse."""
    return page(
        template_name,
        private=True,
        staff=staff,
        staff_may=(lambda permission: staff is not None and staff_may(staff.role, permission)),
        **data,
    )


def staff_next(request: Request[Any, Any, Any]) -> str:
    """Back to the console page that asked for sign-in, never outside the console."""
    target = safe_next(request.query_params.get("next"), STAFF_PREFIX)
    return target if target.startswith(STAFF_PREFIX) else STAFF_PREFIX
