"""Where a request comes from: the address and browser that sign-in limits, sessions and the
audit trail record. Provided once to every handler as the `origin` dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    ip: str
    user_agent: str


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The client's address, as ForwardedHeaders (app/security.py) left it in the scope."""
    return request.client.host if request.client else ""


def provide_origin(request: Request[Any, Any, Any]) -> RequestOrigin:
    return RequestOrigin(ip=client_ip(request), user_agent=request.headers.get("user-agent", ""))
