"""The console's scheduling screens under /staff/scheduling: the day's visits for the front
desk, and what can be booked (types, weekly hours, blocked time) for administrators. One
Router; its guard lets in the roles with the `scheduling` permission, and the inventory's
nested group also needs `scheduling.inventory`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.clinic import clinic_profile, clinic_today
from app.services.visits.inventory import (
    InventoryError,
    Kept,
    block_add,
    day_view,
    inventory_read,
    local_datetime,
    parse_minute,
    template_add,
    template_remove,
    type_save,
    typed_day,
)
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("", name="staff_scheduling")
async def day(
    staff: NamedDependency[StaffActor], on: FromQuery[str] = "", location: FromQuery[str] = ""
) -> Template:
    try:
        chosen = typed_day(on) if on else clinic_today()
    except ValueError:
        chosen = clinic_today()
    visits = await day_view(staff=staff, day=chosen, location=location)
    return staff_page(
        "console/scheduling.html",
        staff=staff,
        tab="scheduling",
        day=chosen,
        previous=chosen - timedelta(days=1),
        following=chosen + timedelta(days=1),
        visits=visits,
    )


async def _inventory_page(
    staff: StaffActor, *, kept: list[Kept] | None = None, error: str = "", status_code: int = 200
) -> Template:
    return staff_page(
        "console/inventory.html",
        staff=staff,
        tab="scheduling",
        inventory=await inventory_read(staff=staff),
        kept=kept or [],
        error=error,
        status_code=status_code,
    )


@get("/inventory", name="staff_inventory")
async def inventory(staff: NamedDependency[StaffActor]) -> Template:
    return await _inventory_page(staff)


def _flag(data: dict[str, str], name: str) -> bool:
    return data.get(name) == "on"


@post("/types/{code:str}", name="staff_type_save")
async def type_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    code: FromPath[str],
    data: Form,
) -> Redirect | Template:
    try:
        fields: dict[str, Any] = {
            name: int(data.get(name, "").strip())
            for name in ("duration_minutes", "min_age", "max_age", "cancel_hours")
        }
        fields.update(
            {
                name: _flag(data, name)
                for name in ("established_patients", "new_patients", "self_bookable")
            }
        )
        fields["modality"] = data.get("modality", "in_person")
        await type_save(staff=staff, code=code, fields=fields)
    except (ValueError, InventoryError):
        return await _inventory_page(staff, error="type", status_code=400)
    return redirect_to(request, "staff_inventory")


@post("/templates", name="staff_template_add")
async def template_post(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], data: Form
) -> Redirect | Template:
    try:
        await template_add(
            staff=staff,
            clinician=data.get("clinician", ""),
            location=data.get("location", ""),
            type_code=data.get("type", ""),
            weekday=int(data.get("weekday", "")),
            start_minute=parse_minute(data.get("start", "")),
            end_minute=parse_minute(data.get("end", "")),
        )
    except (ValueError, InventoryError):
        return await _inventory_page(staff, error="template", status_code=400)
    return redirect_to(request, "staff_inventory")


@post("/templates/{public_id:str}/remove", name="staff_template_remove")
async def template_remove_post(
    staff: NamedDependency[StaffActor], public_id: FromPath[str]
) -> Template:
    kept = await template_remove(staff=staff, public_id=public_id)
    return await _inventory_page(staff, kept=kept)


@post("/blocks", name="staff_block_add")
async def block_post(staff: NamedDependency[StaffActor], data: Form) -> Template:
    zone: ZoneInfo = clinic_profile().timezone
    try:
        starts_at = local_datetime(data.get("start_day", ""), data.get("start_time", ""), zone)
        end_day = data.get("end_day", "") or data.get("start_day", "")
        ends_at = local_datetime(end_day, data.get("end_time", "") or "24:00", zone)
        kept = await block_add(
            staff=staff,
            clinician=data.get("clinician", ""),
            location=data.get("location", ""),
            starts_at=starts_at,
            ends_at=ends_at,
            reason=data.get("reason", "").strip(),
        )
    except (ValueError, InventoryError):
        return await _inventory_page(staff, error="block", status_code=400)
    return await _inventory_page(staff, kept=kept)


# What can be booked is for administrators only: a nested group with the narrower guard.
_inventory_router = Router(
    "/",
    guards=[staff_permission("scheduling.inventory")],
    route_handlers=[inventory, type_post, template_post, template_remove_post, block_post],
)
router = Router(
    "/scheduling",
    guards=[staff_permission("scheduling")],
    route_handlers=[day, _inventory_router],
)
