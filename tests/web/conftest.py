"""Web tests drive the real app over ASGI, on the test database, as a browser without JS would."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from litestar import Litestar

from app.handlers.support import SESSION_COOKIE, STAFF_COOKIE
from app.main import create_app
from app.services.sessions import staff_session_start
from app.settings import Settings, get_settings
from app.tables import StaffUser
from tests.authenticator import SoftAuthenticator
from tests.factories import (
    Person,
    start_session,
    unique,
)

BASE_URL = "http://portal.test"


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Litestar]:
    """The app, its lifespan running on this test's event loop. (Litestar's own test client
    runs the app on another thread's loop, which a PostgreSQL pool opened on this one cannot
    follow.)"""
    app = create_app(settings)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and left in one task: pytest-asyncio sets up and tears down in different ones.
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await asyncio.wait(
        [lifespan, asyncio.create_task(started.wait())], return_when="FIRST_COMPLETED"
    )
    if lifespan.done():
        lifespan.result()  # start-up failed: raise its error here
    try:
        yield app
    finally:
        stop.set()
        await lifespan


@asynccontextmanager
async def serving(
    settings: Settings, address: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, as a browser without JavaScript on 127.0.0.1 (or `address`:
    code requests are counted per address in the database, for the whole run)."""
    async with running(settings) as app:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as test_client:
            yield test_client


@pytest.fixture
def https_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The settings of a portal served over HTTPS (Secure, `__Host-` cookies)."""
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.test")
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings) as test_client:
        yield test_client


@pytest.fixture
async def demo_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(replace(settings, demo=True)) as test_client:
        yield test_client


async def sign_in(
    client: httpx.AsyncClient, person: Person, acting_patient_id: int | None = None
) -> str:
    token = await start_session(person.account.id, acting_patient_id or person.patient.id)
    client.cookies.set(SESSION_COOKIE, token)
    return token


def flashed(response: httpx.Response) -> str | None:
    """The one-time notice this answer leaves for the next page (its key), if any."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() in ("portal_notice", "__Host-portal_notice"):
            value = rest.split(";", 1)[0].strip().strip('"')
            return value or None
    return None


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def staff_signed_in(client: httpx.AsyncClient, role: str = "front_desk") -> StaffUser:
    """A staff member with this role, signed in to the console on this client."""
    staff = StaffUser(
        given_name="Sam",
        family_name=unique("Staff"),
        email=f"{unique('s')}@clinic.test",
        role=role,
    )
    await StaffUser.insert(staff)
    token = await staff_session_start(
        staff_id=staff.id,
        lifetime=timedelta(hours=1),
        ip="127.0.0.1",
        user_agent="pytest",
        reason="test",
    )
    client.cookies.set(STAFF_COOKIE, token, path="/staff")
    return staff


async def add_passkey(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> httpx.Response:
    """Add a passkey from this (signed-in) client, as passkeys.js does."""
    token = csrf_from((await client.get("/more")).text)
    options = await client.post("/passkeys/options", headers={"X-CSRFToken": token}, json={})
    assert options.json()["authenticatorSelection"]["userVerification"] == "required"
    return await client.post(
        "/passkeys",
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.register(options.json())},
    )


async def passkey_sign_in(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> httpx.Response:
    """Sign in with a passkey from the start page, as passkeys.js does."""
    token = csrf_from((await client.get("/")).text)
    options = await client.post("/sign-in/passkey/options", headers={"X-CSRFToken": token}, json={})
    assert options.json()["userVerification"] == "required"
    return await client.post(
        "/sign-in/passkey",
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.sign_in(options.json())},
    )
