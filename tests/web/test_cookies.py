"""Session and CSRF cookies: `__Host-` names on HTTPS, old names dropped, a new CSRF token
at every sign-in, and the token masked afresh in every page (BREACH)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from app.security import csrf_unmask
from app.settings import Settings
from tests.authenticator import SoftAuthenticator
from tests.factories import (
    code_sent_to,
    make_person,
    make_reachable_person,
    own_address,
    staff_sign_up_path,
)
from tests.web.conftest import (
    add_passkey,
    csrf_from,
    passkey_sign_in,
    running,
    serving,
    sign_in,
)

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """From an address of this test's own, so its codes leave 127.0.0.1's hourly limit alone."""
    async with serving(settings, own_address()) as test_client:
        yield test_client


def _meta_token(html: str) -> str:
    match = _META.search(html)
    assert match
    return match.group(1)


async def _code_sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    _, phone, _ = await make_reachable_person()
    await client.post("/sign-in/code", data={"contact": phone, "_csrf_token": token})
    code = await code_sent_to(phone)
    return await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})


async def test_the_csrf_token_is_masked_afresh_in_every_compressed_page(
    client: httpx.AsyncClient,
) -> None:
    # The staff sign-in page reflects `next`: the case BREACH needs.
    path = "/staff/sign-in?next=/staff/audit"
    first = await client.get(path, headers={"accept-encoding": "gzip"})
    second = await client.get(path, headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    cookie = client.cookies["portal_csrf"]
    shown = {_meta_token(first.text), _meta_token(second.text)}
    assert len(shown) == 2  # a new mask for every response
    assert cookie not in first.text
    assert {csrf_unmask(token) for token in shown} == {cookie}
    for token in shown:  # each works
        tried = await client.post("/sign-in/code", data={"contact": "x", "_csrf_token": token})
        assert tried.status_code == 400
    token = _meta_token(first.text)
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    refused = await client.post("/sign-in/code", data={"contact": "x", "_csrf_token": tampered})
    assert refused.status_code == 403


async def test_a_malformed_csrf_token_is_refused_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    person = await make_person("Cid")
    await sign_in(client, person)
    await client.get("/sharing")  # sets the CSRF cookie
    header = await client.post(
        "/sign-out", headers={"X-CSRFToken": ("\xe9" * 128).encode("latin-1")}
    )
    assert header.status_code == 403
    for junk in ("\u00e9" * 128, "\u00e9" * 10, "", "x", "=" * 200, "A" * 171):
        form = await client.post("/sign-out", data={"_csrf_token": junk})
        assert form.status_code == 403, junk
    client.cookies.clear()
    cookie = await client.post(
        "/sign-out",
        data={"_csrf_token": "a" * 128},
        headers={"Cookie": b"portal_csrf=" + b"\xe9" * 128},
    )
    assert cookie.status_code == 403
    assert csrf_unmask("\u00e9" * 128) == ""


async def test_every_sign_in_gets_a_new_csrf_token(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    before_token = csrf_from((await client.get("/sign-in/code")).text)
    before = client.cookies["portal_csrf"]

    signed_in = await _code_sign_in(client, before_token)
    assert signed_in.headers["location"] == "/welcome"
    after_code = client.cookies["portal_csrf"]
    assert after_code != before
    # A token learned before sign-in no longer passes; the page's new one does.
    stale = await client.post("/sign-out", data={"_csrf_token": before_token})
    assert stale.status_code == 403

    authenticator = SoftAuthenticator()
    assert (await add_passkey(client, authenticator)).status_code == 201
    client.cookies.clear()
    assert (await passkey_sign_in(client, authenticator)).status_code == 200
    assert client.cookies["portal_csrf"] not in (before, after_code)

    path = await staff_sign_up_path(settings.base_url)
    token = _meta_token((await client.get(path)).text)
    staff_before = client.cookies["portal_csrf"]
    options = await client.post(f"{path}/options", headers={"X-CSRFToken": token}, json={})
    enrolled = await client.post(
        path,
        headers={"X-CSRFToken": token},
        json={"credential": SoftAuthenticator().register(options.json())},
    )
    assert enrolled.status_code == 201
    assert client.cookies["portal_csrf"] != staff_before


@pytest.fixture
async def https_client(https_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(https_settings) as app:
        yield _client_of(app)


def _client_of(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(own_address(), 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://portal.test")


def _set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


async def test_on_https_cookies_are_host_only_and_secure(
    https_client: httpx.AsyncClient, https_settings: Settings
) -> None:
    async with https_client as client:
        landing = await client.get("/sign-in/code")
        (csrf,) = [c for c in _set_cookies(landing) if c.startswith("__Host-portal_csrf=")]
        assert "Secure" in csrf
        assert "Path=/" in csrf
        assert "Domain" not in csrf

        signed_in = await _code_sign_in(client, csrf_from(landing.text))
        session = [c for c in _set_cookies(signed_in) if c.startswith("__Host-portal_session=")]
        assert len(session) == 1
        assert "Secure" in session[0]
        assert "HttpOnly" in session[0]
        assert (await client.get("/home")).status_code == 200

        path = await staff_sign_up_path(https_settings.base_url)
        token = _meta_token((await client.get(path)).text)
        options = await client.post(f"{path}/options", headers={"X-CSRFToken": token}, json={})
        key = SoftAuthenticator(rp_id="portal.test", origin="https://portal.test")
        enrolled = await client.post(
            path, headers={"X-CSRFToken": token}, json={"credential": key.register(options.json())}
        )
        assert enrolled.status_code == 201
        (staff,) = [c for c in _set_cookies(enrolled) if c.startswith("__Host-portal_staff=")]
        assert "Path=/;" in staff or staff.endswith("Path=/")
        assert (await client.get("/staff")).status_code == 200


async def test_on_https_old_cookie_names_sign_people_out_cleanly(
    https_client: httpx.AsyncClient,
) -> None:
    person = await make_person()
    async with https_client as client:
        token = await sign_in(client, person)
        # The name older versions used, as the browser kept it for this host.
        client.cookies.clear()
        client.cookies.set("portal_session", token, domain="portal.test")
        home = await client.get("/home", follow_redirects=False)
        assert home.status_code == 303  # not signed in by an unprefixed cookie
        dropped = [c for c in _set_cookies(home) if c.startswith("portal_session=")]
        assert len(dropped) == 1
        assert "Max-Age=0" in dropped[0]
        assert client.cookies.get("portal_session") is None


async def test_a_sign_in_sent_by_htmx_loads_the_next_page_in_full(
    client: httpx.AsyncClient,
) -> None:
    """htmx would swap only the body and keep the page's old CSRF token in its head."""
    token = csrf_from((await client.get("/sign-in/code")).text)
    client.headers["HX-Request"] = "true"
    signed_in = await _code_sign_in(client, token)
    assert signed_in.status_code == 200
    assert signed_in.headers["hx-redirect"] == "/welcome"
    assert "location" not in signed_in.headers
    assert client.cookies.get("portal_session")
    wrong = await client.post("/sign-in/code/check", data={"code": "1", "_csrf_token": token})
    assert wrong.status_code == 403  # the token from before sign-in no longer works
