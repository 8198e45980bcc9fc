"""Who is signed in, found once per request before anything else reads it.

A middleware rather than a before_request hook: Litestar runs a route's guards before its
before_request hooks, and the route groups' guards (app/web/guards.py) need to know."""

from __future__ import annotations

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.handlers.support import identify_request


class IdentifyRequest(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        await identify_request(Request(scope, receive))
        await next_app(scope, receive, send)
