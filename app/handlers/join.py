"""Self-enrollment from a clinic poster: /join/{location code}. No JavaScript needed."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.handlers.support import page
from app.services.join import JoinLocation, join_location, join_start
from app.services.rate_limit import JOIN_PER_IP, rate_limit_ip
from app.services.sign_in import CodeError
from app.settings import get_settings
from app.web.codes import to_code_check
from app.web.origin import RequestOrigin

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
FIELDS = ("given_name", "family_name", "birth_date", "contact")


def _form(
    location: JoinLocation, typed: dict[str, str], errors: set[str], status_code: int = 200
) -> Template:
    return page(
        "join/join.html",
        location=location,
        typed=typed,
        errors=errors,
        status_code=status_code,
        private=True,
    )


@get("/{code:str}", name="join")
async def join_page(code: FromPath[str]) -> Template:
    return _form(await join_location(code), dict.fromkeys(FIELDS, ""), set())


@post("/{code:str}", name="join_start")
async def join(
    request: Request[Any, Any, Any],
    origin: NamedDependency[RequestOrigin],
    code: FromPath[str],
    data: Form,
) -> Template | Redirect:
    location = await join_location(code)
    typed = {field: data.get(field, "").strip() for field in FIELDS}
    if not await rate_limit_ip(JOIN_PER_IP, ip=origin.ip, user_agent=origin.user_agent):
        return _form(location, typed, {"limit"}, status_code=429)
    errors = {field for field in ("given_name", "family_name", "contact") if not typed[field]}
    try:
        birth_date = date.fromisoformat(typed["birth_date"])
    except ValueError:
        errors.add("birth_date")
    if errors:
        return _form(location, typed, errors, status_code=400)
    try:
        handle = await join_start(
            location=location,
            given_name=typed["given_name"],
            family_name=typed["family_name"],
            birth_date=birth_date,
            contact=typed["contact"],
            secret=get_settings().secret_key,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    except CodeError as error:
        status = 400 if error.reason == "contact" else 429
        return _form(location, typed, {error.reason}, status_code=status)
    return to_code_check(request, handle, joining=True)


router = Router("/join", route_handlers=[join_page, join])
