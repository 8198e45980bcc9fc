"""Demo sign-in links (`portal demo` prints them). Mounted only when PORTAL_DEMO is on."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.errors import NotFoundError
from app.handlers.support import page, session_lifetime, with_session_cookie, with_staff_cookie
from app.services.demo.clinic import PERSONAS
from app.services.demo.sign_in import DEMO_STAFF, demo_sign_in, demo_staff_sign_in, persona_find
from app.web.links import redirect_to, url
from app.web.origin import RequestOrigin


@get("/", name="demo_personas")
async def personas() -> Template:
    return page("demo/personas.html", personas=PERSONAS, staff=DEMO_STAFF)


@get("/sign-in/{slug:str}", name="demo_confirm")
async def confirm(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
    """A link only shows a button: link scanners and previews must not sign anyone in."""
    persona = persona_find(slug)
    return page(
        "demo/confirm.html",
        persona=persona,
        staff_summary="",
        action=url(request, "demo_sign_in", slug=persona.slug),
    )


@post("/sign-in/{slug:str}", name="demo_sign_in")
async def sign_in(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], slug: FromPath[str]
) -> Redirect:
    token = await demo_sign_in(
        slug=slug, lifetime=session_lifetime(), ip=origin.ip, user_agent=origin.user_agent
    )
    return with_session_cookie(redirect_to(request, "home"), token)


@get("/staff/{slug:str}", name="demo_staff_confirm")
async def staff_confirm(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
    if slug not in DEMO_STAFF:
        raise NotFoundError(slug)
    return page(
        "demo/confirm.html",
        persona=None,
        staff_summary=DEMO_STAFF[slug][1],
        action=url(request, "demo_staff_sign_in", slug=slug),
    )


@post("/staff/{slug:str}", name="demo_staff_sign_in")
async def staff_sign_in(
    request: Request[Any, Any, Any], origin: NamedDependency[RequestOrigin], slug: FromPath[str]
) -> Redirect:
    token = await demo_staff_sign_in(
        slug=slug, lifetime=session_lifetime(), ip=origin.ip, user_agent=origin.user_agent
    )
    return with_staff_cookie(redirect_to(request, "staff_home"), token)


router = Router("/demo", route_handlers=[personas, confirm, sign_in, staff_confirm, staff_sign_in])
