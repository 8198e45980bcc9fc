"""A crash shows a plain 500 page, keeps nothing half written, and logs no health data."""

from __future__ import annotations

import logging

import pytest
from httpx import AsyncClient

from app.handlers import home
from tests.factories import make_person
from tests.web.conftest import sign_in


async def test_a_crash_shows_the_error_page_and_logs_no_detail(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Built at run time, so the message is data, not a line of code a traceback could quote.
    detail = " ".join(["glucose", str(400 + 12), "for", "Rosa", "Diaz"])

    async def crashing_summary(context: object) -> None:
        raise RuntimeError(detail)

    monkeypatch.setattr(home, "home_summary", crashing_summary)
    await sign_in(client, await make_person())
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/home")
    assert response.status_code == 500
    assert "something went wrong on our side" in response.text
    assert "glucose" not in response.text
    assert "RuntimeError" in caplog.text
    assert "glucose" not in caplog.text
    assert "Rosa" not in caplog.text


async def test_an_expired_session_sends_the_person_to_sign_in_again(client: AsyncClient) -> None:
    from datetime import UTC, datetime, timedelta

    from app.clock import set_clock

    await sign_in(client, await make_person())
    assert (await client.get("/home")).status_code == 200
    later = datetime.now(UTC) + timedelta(minutes=16)
    set_clock(lambda: later)
    response = await client.get("/home", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?next=/home"


async def test_an_address_no_route_matches_is_answered_in_the_readers_language(
    client: AsyncClient,
) -> None:
    response = await client.get("/no-such-page", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert response.status_code == 404
    assert '<html lang="es">' in response.text
    assert "Ir al contenido" in response.text

    client.cookies.set("portal_lang", "es")
    response = await client.get("/no-such-page")
    assert '<html lang="es">' in response.text
