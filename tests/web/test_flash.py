"""One-time notices: a redirect flashes a key from a fixed catalogue in a short-lived cookie,
the next page shows it once in the layout's one notice area, and the address never carries it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.settings import Settings
from app.web.flash import NOTICE_SECONDS, NOTICES
from tests.factories import make_person
from tests.web.conftest import csrf_from, flashed, running, sign_in

_NOTICE_AREA = re.compile(
    r'<p id="notice" class="(notice|error)" role="(?:status|alert)">([^<]*)</p>'
)


def _notice_areas(html: str) -> list[tuple[str, str]]:
    return _NOTICE_AREA.findall(html)


async def test_a_notice_is_shown_once_in_the_layouts_notice_area(
    client: httpx.AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    token = csrf_from((await client.get("/notifications")).text)
    saved = await client.post(
        "/notifications", data={"results.push": "on", "_csrf_token": token}, follow_redirects=False
    )
    assert saved.headers["location"] == "/notifications"  # no notice in the address
    assert flashed(saved) == "notifications_saved"

    shown = await client.get("/notifications")
    assert _notice_areas(shown.text) == [("notice", "Saved.")]
    assert shown.text.count('role="status"') == 1 + shown.text.count('class="proxy-band"')
    # The page that showed it has the browser drop it: a reload says nothing.
    assert any(
        c.startswith("portal_notice=") and "Max-Age=0" in c
        for c in shown.headers.get_list("set-cookie")
    )
    assert _notice_areas((await client.get("/notifications")).text) == []


async def test_a_notice_that_asks_for_a_fix_is_an_alert_and_news_is_a_status(
    client: httpx.AsyncClient,
) -> None:
    """A screen reader speaks an alert at once; news waits its turn."""
    person = await make_person()
    await sign_in(client, person)
    token = csrf_from((await client.get("/notifications")).text)
    await client.post(
        "/notifications",
        data={"quiet": "on", "quiet_start": "late", "quiet_end": "x", "_csrf_token": token},
        follow_redirects=False,
    )
    shown = (await client.get("/notifications")).text
    assert '<p id="notice" class="error" role="alert">Please enter the quiet hours' in shown
    assert shown.count('aria-invalid="true" aria-describedby="notice"') == 2  # From and To

    await client.post(
        "/notifications", data={"results.push": "on", "_csrf_token": token}, follow_redirects=False
    )
    shown = (await client.get("/notifications")).text
    assert '<p id="notice" class="notice" role="status">Saved.</p>' in shown


async def test_a_notice_cookie_holds_only_a_key_for_a_minute(client: httpx.AsyncClient) -> None:
    token = csrf_from((await client.get("/")).text)
    out = await client.post("/sign-out", data={"_csrf_token": token}, follow_redirects=False)
    (cookie,) = [c for c in out.headers.get_list("set-cookie") if c.startswith("portal_notice=")]
    assert cookie.startswith("portal_notice=signed_out;")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert f"Max-Age={NOTICE_SECONDS}" in cookie
    assert "Path=/" in cookie
    assert NOTICE_SECONDS <= 60


async def test_a_made_up_notice_shows_nothing(client: httpx.AsyncClient) -> None:
    """Only catalogue keys have words: a cookie cannot put text of its own on a page."""
    client.cookies.set("portal_notice", "<b>Call 555-0100 now</b>")
    page = await client.get("/")
    assert _notice_areas(page.text) == []
    assert "555-0100" not in page.text
    assert any(c.startswith("portal_notice=") for c in page.headers.get_list("set-cookie"))


def test_every_notice_is_translated_and_names_no_one() -> None:
    from app.i18n import translations_for

    spanish = translations_for("es")
    for key, notice in NOTICES.items():
        assert spanish.ugettext(notice.text) != notice.text, key
        # Values a text names come from the page showing it, and only the contact it went to.
        assert re.findall(r"%\((\w+)\)s", notice.text) in ([], ["phone"], ["email"]), key


async def test_an_htmx_partial_leaves_the_notice_for_the_page(client: httpx.AsyncClient) -> None:
    """A list swapped in by htmx has no notice area, so it must not use the notice up."""
    await sign_in(client, await make_person())
    client.cookies.set("portal_notice", "notifications_saved")
    partial = await client.get(
        "/visits?show=past", headers={"HX-Request": "true", "HX-Target": "visits"}
    )
    assert _notice_areas(partial.text) == []
    assert not any(c.startswith("portal_notice=") for c in partial.headers.get_list("set-cookie"))
    assert _notice_areas((await client.get("/visits")).text) == [("notice", "Saved.")]


async def test_an_error_notice_reads_as_one(client: httpx.AsyncClient) -> None:
    await sign_in(client, await make_person())
    client.cookies.set("portal_notice", "quiet_hours_unreadable")
    page = await client.get("/notifications")
    assert _notice_areas(page.text) == [("error", "Please enter the quiet hours as times.")]


async def test_a_notice_is_shown_in_the_pages_language(client: httpx.AsyncClient) -> None:
    client.cookies.set("portal_notice", "signed_out")
    page = await client.get("/", headers={"accept-language": "es"})
    assert _notice_areas(page.text) == [("notice", "Cerró la sesión.")]


async def test_the_idle_sign_out_says_why_on_the_start_page(client: httpx.AsyncClient) -> None:
    """static/js/portal.js posts reason=idle, then opens the start page with only ?next=."""
    await sign_in(client, await make_person())
    token = csrf_from((await client.get("/more")).text)
    out = await client.post(
        "/sign-out", data={"reason": "idle", "_csrf_token": token}, follow_redirects=False
    )
    assert out.headers["location"] == "/"
    assert flashed(out) == "idle_signed_out"
    start = await client.get("/?next=/results")
    [(_, text)] = _notice_areas(start.text)
    assert text.startswith("To keep your record private, you were signed out")
    assert 'data-next="/results"' in start.text


@pytest.fixture
async def https_client(https_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(https_settings) as app:
        transport = httpx.ASGITransport(app=app, client=("10.91.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as c:
            yield c


async def test_on_https_the_notice_cookie_is_host_only_and_secure(
    https_client: httpx.AsyncClient,
) -> None:
    token = csrf_from((await https_client.get("/")).text)
    out = await https_client.post("/sign-out", data={"_csrf_token": token}, follow_redirects=False)
    (cookie,) = [
        c for c in out.headers.get_list("set-cookie") if c.startswith("__Host-portal_notice=")
    ]
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie
    assert flashed(out) == "signed_out"
    shown = await https_client.get("/")
    assert _notice_areas(shown.text) == [("notice", "You are signed out.")]
