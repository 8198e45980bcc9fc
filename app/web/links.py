"""Links and redirects by route name: an address changes in one place, its route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request
from litestar.response import Redirect

from app.web.flash import flash


def url(
    request: Request[Any, Any, Any],
    name: str,
    *,
    query: Mapping[str, str | int] | None = None,
    **path_parameters: str,
) -> str:
    """The path of the route with this name (as `url_for` gives templates), its parameters
    percent-encoded."""
    quoted = {key: quote(value, safe="") for key, value in path_parameters.items()}
    path = request.app.route_reverse(name, **quoted)
    return f"{path}?{urlencode(query)}" if query else path


def redirect_to(
    request: Request[Any, Any, Any],
    name: str,
    *,
    notice: str | None = None,
    query: Mapping[str, str | int] | None = None,
    **path_parameters: str,
) -> Redirect:
    """Post/redirect/get: a 303 to a named route, with a one-time notice for the next page."""
    response = Redirect(url(request, name, query=query, **path_parameters), status_code=303)
    if notice is not None:
        flash(response, notice)
    return response
