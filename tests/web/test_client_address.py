"""Which address a request is counted and audited under: the peer's, unless the peer is one
of PORTAL_TRUSTED_PROXIES, and then the right-most address those proxies did not add."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from litestar.types import Receive, Scope, Send

from app import cli
from app.security import ForwardedHeaders, forwarded_client
from app.settings import Settings
from app.tables import AuditEvent
from tests.factories import unique
from tests.web.conftest import csrf_from, serving

PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


async def _failed_sign_in_ip(settings: Settings, forwarded_for: str) -> str:
    """Fail a passkey sign-in with this X-Forwarded-For; the address the audit row names."""
    agent = unique("agent-")
    async with serving(settings) as client:
        token = csrf_from((await client.get("/")).text)
        await client.post(
            "/sign-in/passkey",
            headers={"X-CSRFToken": token, "X-Forwarded-For": forwarded_for, "User-Agent": agent},
            json={"credential": {"id": "bm90LWEta2V5"}},
        )
    row = await AuditEvent.select(AuditEvent.ip).where(AuditEvent.user_agent == agent).first()
    assert row is not None
    return str(row["ip"])


async def test_forwarded_for_is_ignored_by_default(settings: Settings) -> None:
    assert settings.trusted_proxies == ()
    assert await _failed_sign_in_ip(settings, "203.0.113.9") == "127.0.0.1"


async def test_a_trusted_proxy_s_client_is_the_right_most_untrusted_address(
    settings: Settings,
) -> None:
    behind = replace(settings, trusted_proxies=PROXIES)
    # The client wrote the first entry itself; our proxies added the rest.
    ip = await _failed_sign_in_ip(behind, "198.51.100.1, 203.0.113.9, 10.1.2.3")
    assert ip == "203.0.113.9"


def test_forwarded_for_is_read_with_care() -> None:
    assert forwarded_client("192.0.2.1", "203.0.113.9", PROXIES) is None  # not our proxy
    assert forwarded_client("127.0.0.1", "", PROXIES) is None
    assert forwarded_client("127.0.0.1", "[2001:db8::7]:443", PROXIES) == "2001:db8::7"
    assert forwarded_client("127.0.0.1", "203.0.113.9:5000", PROXIES) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", "10.0.0.9, 10.0.0.8", PROXIES) == "10.0.0.9"
    assert forwarded_client("127.0.0.1", "203.0.113.9, not-an-address", PROXIES) is None


async def test_forwarded_proto_is_believed_only_from_a_trusted_proxy() -> None:
    seen: dict[str, object] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scheme=scope["scheme"], client=scope["client"])

    async def nothing() -> dict[str, object]:
        return {}

    headers = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"203.0.113.9")]
    for peer, expected in (("10.2.3.4", ("https", ("203.0.113.9", 0))), ("192.0.2.1", None)):
        scope = {"type": "http", "scheme": "http", "client": (peer, 1), "headers": headers}
        await ForwardedHeaders(app, PROXIES)(scope, nothing, nothing)  # type: ignore[arg-type]
        want = expected or ("http", (peer, 1))
        assert (seen["scheme"], seen["client"]) == want


def test_portal_serve_leaves_forwarded_headers_to_the_app(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    import uvicorn

    given: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: given.update(kwargs))
    cli._serve("127.0.0.1", 8000, 1, settings)
    assert given["proxy_headers"] is False


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import load_settings

    monkeypatch.setenv("PORTAL_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 2001:db8::/32")
    assert [str(n) for n in load_settings().trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "2001:db8::/32",
    ]
    monkeypatch.setenv("PORTAL_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(ValueError, match="PORTAL_TRUSTED_PROXIES"):
        load_settings()
