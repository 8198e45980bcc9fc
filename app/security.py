"""Security headers on every response: pages, static files, and errors the router raises."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from app.assets import inline_stylesheet_source

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {inline_stylesheet_source()}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

BASE_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": (
        "camera=(), microphone=(), geolocation=(), payment=(self), "
        "publickey-credentials-get=(self), publickey-credentials-create=(self)"
    ),
}
HSTS = "max-age=63072000; includeSubDomains"


def security_headers_hook(*, https: bool):  # type: ignore[no-untyped-def]
    """A before_send hook: Litestar runs it for every response, 404s from the router included."""
    headers = {**BASE_HEADERS, **({"strict-transport-security": HSTS} if https else {})}

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        response_headers = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            if name not in response_headers:
                response_headers[name] = value

    return add_security_headers
