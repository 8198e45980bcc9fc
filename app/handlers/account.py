"""Signing out, and switching whose record this device shows."""

from __future__ import annotations

from typing import Annotated

from litestar import post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from app.handlers.support import SESSION_COOKIE, safe_next
from app.services.access import Actor
from app.services.profiles import profile_switch
from app.services.sessions import session_end


@post("/sign-out", name="sign_out")
async def sign_out(actor: NamedDependency[Actor]) -> Redirect:
    await session_end(actor=actor)
    response = Redirect("/?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@post("/profile", name="profile_switch")
async def switch_profile(
    actor: NamedDependency[Actor],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """One tap on a name in the switcher: that person's record, on the same tab."""
    await profile_switch(actor=actor, patient_public_id=data.get("patient", ""))
    return Redirect(safe_next(data.get("next"), "/home"), status_code=303)
