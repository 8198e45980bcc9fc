"""The step every one-time code leads to: the code form, with the browser holding the handle
of its pending code. Code sign-in and the poster join both end here."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect

from app.handlers.support import cookie_name
from app.services.sign_in import CODE_TTL
from app.settings import get_settings
from app.web.links import url

CODE_COOKIE = "portal_code"


def code_handle(request: Request[Any, Any, Any]) -> str:
    return request.cookies.get(cookie_name(CODE_COOKIE), "")


def to_code_check(
    request: Request[Any, Any, Any], handle: str, *, joining: bool = False
) -> Redirect:
    """On to the code form. `joining` words it for a poster join, which may have sent no code
    (the front desk has the request then)."""
    target = url(request, "code_check_form", query={"joining": 1} if joining else None)
    response = Redirect(target, status_code=303)
    response.set_cookie(
        cookie_name(CODE_COOKIE),
        handle,
        max_age=int(CODE_TTL.total_seconds()),
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return response
