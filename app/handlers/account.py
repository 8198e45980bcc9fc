"""Signing out."""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.response import Redirect

from app.handlers.support import SESSION_COOKIE
from app.services.access import Actor
from app.services.sessions import session_end


@post("/sign-out", name="sign_out")
async def sign_out(actor: NamedDependency[Actor]) -> Redirect:
    await session_end(actor=actor)
    response = Redirect("/?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
