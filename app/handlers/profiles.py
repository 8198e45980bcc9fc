"""Whose record this device shows: one tap on a name in the switcher."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from app.access import Actor
from app.handlers.support import safe_next
from app.services.profiles import profile_switch
from app.web.guards import account_signed_in
from app.web.links import url


@post("/", name="profile_switch")
async def switch_profile(
    request: Request[Any, Any, Any],
    actor: NamedDependency[Actor],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """That person's record, on the same tab."""
    await profile_switch(actor=actor, patient_public_id=data.get("patient", ""))
    return Redirect(safe_next(data.get("next"), url(request, "home")), status_code=303)


router = Router("/profile", guards=[account_signed_in], route_handlers=[switch_profile])
