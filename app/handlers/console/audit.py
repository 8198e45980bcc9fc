"""The audit log: administrators search the whole trail (who looked at which record, when,
from where). Each search is itself audited against every patient it shows."""

from __future__ import annotations

from datetime import date

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from app.access import StaffActor
from app.services.console.audit_search import AuditFilters, audit_search
from app.web.console import staff_page
from app.web.guards import staff_permission


def _unreadable(staff: StaffActor, typed: dict[str, str]) -> Template:
    return staff_page(
        "console/audit.html", staff=staff, typed=typed, lines=None, error="date", status_code=400
    )


@get("/", name="staff_audit")
async def audit(
    staff: NamedDependency[StaffActor],
    mrn: FromQuery[str] = "",
    staff_email: FromQuery[str] = "",
    action: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
) -> Template:
    typed = {
        "mrn": mrn,
        "staff_email": staff_email,
        "action": action,
        "since": since,
        "until": until,
    }
    try:
        filters = AuditFilters(
            mrn=mrn,
            staff_email=staff_email,
            action=action,
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
        )
    except ValueError:
        return _unreadable(staff, typed)
    if filters.until is not None and filters.until >= date.max:
        # The search runs to the end of that day, which does not exist for the last date.
        return _unreadable(staff, typed)
    lines = None if filters.empty else await audit_search(staff=staff, filters=filters)
    return staff_page("console/audit.html", staff=staff, typed=typed, lines=lines, error="")


router = Router("/audit", guards=[staff_permission("audit.search")], route_handlers=[audit])
