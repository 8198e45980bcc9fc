"""Security headers on every response (pages, static files, and errors the router raises),
which client a request comes from when the portal runs behind a proxy, and CSRF tokens
masked per response."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from contextvars import ContextVar

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.datastructures.cookie import Cookie
from litestar.enums import ScopeType
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.assets import inline_start_script_source, inline_stylesheet_source
from app.settings import IPNetwork

# Stripe's hosted payment page: a form posted to us is answered with a redirect there, and
# Chrome holds that redirect to the form's form-action.
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def content_security_policy(*, form_targets: Sequence[str] = ()) -> str:
    """The CSP: everything from our own origin; forms may also lead to `form_targets` (only
    Stripe Checkout, and only when Stripe takes the cards)."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {inline_start_script_source()}",
            f"style-src 'self' {inline_stylesheet_source()}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            " ".join(("form-action 'self'", *form_targets)),
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()

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


def security_headers_hook(*, https: bool, stripe_checkout: bool = False):  # type: ignore[no-untyped-def]
    """A before_send hook: Litestar runs it for every response, 404s from the router included.
    With `stripe_checkout` (Stripe takes the cards), forms may lead on to Stripe Checkout."""
    headers = {**BASE_HEADERS, **({"strict-transport-security": HSTS} if https else {})}
    if stripe_checkout:
        headers["content-security-policy"] = content_security_policy(
            form_targets=(STRIPE_CHECKOUT_ORIGIN,)
        )

    # Encoded once: the hook runs for every response.
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        response_headers = message.setdefault("headers", [])
        if not isinstance(response_headers, list):
            response_headers = message["headers"] = list(response_headers)
        present = {bytes(name).lower() for name, _ in response_headers}
        response_headers.extend(pair for pair in encoded if pair[0] not in present)

    return add_security_headers


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from X-Forwarded-For: "203.0.113.7", "2001:db8::1", "[2001:db8::1]:443",
    "203.0.113.7:5000"; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[IPNetwork]
) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: str, proxies: Sequence[IPNetwork]) -> str | None:
    """The client's address when `peer` is a trusted proxy, else None (keep the peer).

    Each proxy appends the address it saw, so the right-most address that is not one of
    our proxies is the first one we can believe; anything left of it the client wrote."""
    peer_address = _address(peer)
    if peer_address is None or not _trusted(peer_address, proxies):
        return None
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return None  # garbled: count the request under the proxy, never a made-up name
        if not _trusted(address, proxies):
            return str(address)
    first = _address(hops[0]) if hops else None
    return str(first) if first else None


class ForwardedHeaders:
    """ASGI middleware: believe X-Forwarded-For and X-Forwarded-Proto only from the proxies
    in PORTAL_TRUSTED_PROXIES (none by default), so the per-address limits, sessions and
    the audit trail see the real client and a client cannot name its own address."""

    def __init__(self, app: ASGIApp, proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.proxies and client and scope["type"] in {"http", "websocket"}:
            peer = _address(client[0])
            if peer is not None and _trusted(peer, self.proxies):
                self._believe(scope, client[0])
        await self.app(scope, receive, send)

    def _believe(self, scope: Scope, peer: str) -> None:
        """The request came through one of our proxies: take its word for who sent it."""
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        found = forwarded_client(peer, ",".join(headers.get("x-forwarded-for", [])), self.proxies)
        if found is not None:
            scope["client"] = (found, 0)
        proto = ",".join(headers.get("x-forwarded-proto", [])).split(",")[-1].strip().lower()
        if proto in {"http", "https"} and scope["type"] == ScopeType.HTTP:
            scope["scheme"] = proto


# CSRF tokens, masked per response --------------------------------------------------------
#
# BREACH: a page compressed with gzip that holds both a secret and text an attacker can
# choose (a reflected `?next=`) leaks the secret byte by byte through the compressed size.
# Rather than keep every reflected value out of every compressed page (easy to get wrong as
# pages grow), the CSRF token is never the same twice on the wire: each response shows it
# XORed with a fresh random pad, pad first (as Django does). The cookie keeps the plain
# token; a form's or header's token is unmasked before Litestar's usual check.


# Litestar's plain token: 32 random bytes and their HMAC, in hex.
CSRF_TOKEN_LENGTH = CSRF_SECRET_LENGTH * 2


def csrf_mask(token: str) -> str:
    """The token as a page shows it: random pad + (token XOR pad), base64url; "" for a
    cookie that is not a token (it fails the check either way)."""
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return ""
    pad = secrets.token_bytes(len(raw))
    masked = pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return base64.urlsafe_b64encode(masked).decode().rstrip("=")


def csrf_unmask(shown: str) -> str:
    """The plain token from a masked one; a plain (older, unmasked) token as it is; "" for
    anything else, which then fails the check (the check's compare_digest raises on
    non-ASCII text, which would be a 500, so only ASCII is passed through)."""
    if not shown.isascii():
        return ""
    if len(shown) == CSRF_TOKEN_LENGTH:
        return shown
    try:
        masked = base64.urlsafe_b64decode(shown + "=" * (-len(shown) % 4))
    except (ValueError, binascii.Error):
        return ""
    if len(masked) != CSRF_TOKEN_LENGTH:  # a pad and a token of 64 bytes each
        return ""
    half = len(masked) // 2
    pad, xored = masked[:half], masked[half:]
    return bytes(a ^ b for a, b in zip(xored, pad, strict=True)).hex()


class MaskedCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF middleware (cookie + form field or X-CSRFToken header), with the
    token pages show masked per response (above)."""

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        super().__init__(app=_mask_for_templates(app), config=config)

    def _csrf_tokens_match(self, request_csrf_token: str, cookie_csrf_token: str) -> bool:
        if not cookie_csrf_token.isascii():
            return False  # a forged cookie: a refusal, not a 500
        return super()._csrf_tokens_match(csrf_unmask(request_csrf_token), cookie_csrf_token)


# The masked token of the request being answered, for templates' csrf_token() in a macro
# imported without the page's context (templating.py): the same value as the request's state.
_shown_csrf_token: ContextVar[str] = ContextVar("portal_csrf_token", default="")


def shown_csrf_token() -> str:
    """The token this response's forms carry; "" outside a request the CSRF check saw."""
    return _shown_csrf_token.get()


def _mask_for_templates(app: ASGIApp) -> ASGIApp:
    """Between the CSRF check and the handler: what csrf_token() gives templates is a
    fresh mask of the plain token."""

    async def masked(scope: Scope, receive: Receive, send: Send) -> None:
        state = ScopeState.from_scope(scope)
        if isinstance(state.csrf_token, str) and state.csrf_token:
            plain = csrf_unmask(state.csrf_token)
            state.csrf_token = csrf_mask(plain) if plain else ""
        shown = _shown_csrf_token.set(state.csrf_token if isinstance(state.csrf_token, str) else "")
        try:
            await app(scope, receive, send)
        finally:
            _shown_csrf_token.reset(shown)

    return masked


def forget_cookies_hook(cookies: Mapping[str, str]):  # type: ignore[no-untyped-def]
    """A before_send hook: tell the browser to drop these cookies (name: path) whenever a
    request still carries one."""

    async def forget(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or not cookies:
            return
        sent = b"; ".join(value for name, value in scope["headers"] if name == b"cookie")
        names = {part.split(b"=", 1)[0].strip().decode("latin-1") for part in sent.split(b";")}
        headers = MutableScopeHeaders.from_message(message)
        for name in names & cookies.keys():
            gone = Cookie(key=name, value="", path=cookies[name], max_age=0, expires=0)
            headers.add("set-cookie", gone.to_header(header=""))

    return forget


def full_load_after_sign_in_hook(csrf_cookie: str):  # type: ignore[no-untyped-def]
    """A before_send hook. Signing in sets a new CSRF cookie (handlers/support.py), but when
    the form was sent by htmx (hx-boost), htmx would follow the redirect and swap only the
    body, leaving the old token in the page's head and the body's hx-headers: the next
    form would be refused. HX-Redirect has the browser load the next page in full."""
    cookie_prefix = f"{csrf_cookie}=".encode()

    async def full_load(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or message["status"] not in {302, 303}:
            return
        if not any(name == b"hx-request" for name, _ in scope["headers"]):
            return
        response_headers = list(message.get("headers", []))
        if not any(
            name.lower() == b"set-cookie" and value.startswith(cookie_prefix)
            for name, value in response_headers
        ):
            return
        message["status"] = 200
        message["headers"] = [
            (b"hx-redirect", value) if name.lower() == b"location" else (name, value)
            for name, value in response_headers
        ]

    return full_load
