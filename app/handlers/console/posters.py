"""Posters: each location's printable, bilingual poster with its join QR code."""

from __future__ import annotations

from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from app.access import StaffActor
from app.services.console.posters import PAPER, location_codes, poster_layout, poster_location
from app.settings import get_settings
from app.templating import current_clinic, poster_svg
from app.web.console import staff_page
from app.web.guards import staff_permission


@get("/", name="staff_posters")
async def posters(staff: NamedDependency[StaffActor]) -> Template:
    locations = [await poster_location(code) for code in await location_codes()]
    return staff_page(
        "console/posters.html",
        staff=staff,
        locations=[location for location in locations if location],
        sizes=tuple(PAPER),
    )


@get("/{code:str}/{size:str}", name="staff_poster")
async def poster(code: FromPath[str], size: FromPath[str]) -> Response[str]:
    """The poster as an SVG file: open it and print at 100% on Letter or A4 paper."""
    location = await poster_location(code)
    if location is None or size not in PAPER:
        raise NotFoundException()
    svg = poster_svg(
        poster_layout(
            location=location,
            clinic_name=current_clinic().name,
            base_url=get_settings().base_url,
            size=size,
        )
    )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Content-Disposition": f'inline; filename="poster-{location.code}-{size}.svg"',
            "Cache-Control": "no-store",
        },
    )


router = Router("/posters", guards=[staff_permission("posters")], route_handlers=[posters, poster])
