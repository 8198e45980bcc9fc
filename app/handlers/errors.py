"""Error pages: one template per status, htmx-aware, never a stack trace or health data."""

from __future__ import annotations

import logging
import traceback
from typing import Any
from urllib.parse import quote

import asyncpg
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.errors import NotFoundError, NotPermittedError
from app.handlers.support import NO_STORE, STAFF_PREFIX, choose_locale, htmx_target

log = logging.getLogger("portal.errors")

KNOWN_PAGES = {400, 403, 404, 405, 500}


def _error_page(request: Request[Any, Any, Any], status_code: int) -> Template:
    template = f"errors/{status_code if status_code in KNOWN_PAGES else 500}.html"
    headers = dict(NO_STORE)
    partial = htmx_target(request) is not None
    if partial:
        # A partial request that failed: show the error where the page's content goes.
        headers.update({"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    # An address no route matches is answered before the middleware that finds who is
    # signed in and chooses the language: choose it here, or a Spanish reader gets an
    # English page marked lang="en".
    if not hasattr(request.state, "actor") and not hasattr(request.state, "staff"):
        choose_locale(request, None)
    # When the record was already opened (e.g. a caregiver on a page their access leaves
    # out), the error sits inside the usual frame: whose record, the chips, the tab bar.
    context = getattr(request.state, "patient_context", None)
    return Template(
        template_name=template,
        context={"ctx": context, "tab": "", "status_code": status_code, "partial": partial},
        status_code=status_code,
        headers=headers,
    )


def not_signed_in(request: Request[Any, Any, Any], _: NotAuthorizedException) -> Response[Any]:
    """Back to the start, then back here after signing in."""
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    # Only a page can be returned to; a form's address would answer "method not allowed".
    in_console = request.url.path == STAFF_PREFIX or request.url.path.startswith(STAFF_PREFIX + "/")
    start = request.app.route_reverse("staff_sign_in_page" if in_console else "landing")
    target = f"{start}?next={quote(here)}" if request.method == "GET" else start
    if request.headers.get("hx-request"):
        return ClientRedirect(target)
    return Redirect(target, status_code=303)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Template:
    return _error_page(request, exc.status_code)


def not_found(request: Request[Any, Any, Any], _: Exception) -> Template:
    return _error_page(request, 404)


def not_permitted(request: Request[Any, Any, Any], _: Exception) -> Template:
    return _error_page(request, 403)


def unreadable_input(request: Request[Any, Any, Any], exc: Exception) -> Template:
    """PostgreSQL refused a value it cannot store (a NUL byte, text longer than its column, a
    number out of range): the person sent input we cannot read. SQLite takes such values, so
    each input is also checked where it is read; this answers whatever slips through."""
    log.warning(
        "Refused input (%s) on %s %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template", "?"),
    )
    return _error_page(request, 400)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Template:
    # The type, the route and the code frames only: a message can carry data we must not log.
    log.error(
        "Unhandled %s on %s %s\n%s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template", "?"),
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return _error_page(request, 500)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotAuthorizedException: not_signed_in,
    PermissionDeniedException: not_permitted,
    NotPermittedError: not_permitted,
    NotFoundException: not_found,
    NotFoundError: not_found,
    HTTPException: http_error,
    asyncpg.exceptions.DataError: unreadable_input,
    Exception: server_error,
}
