"""End-to-end harness: the real server in a subprocess, real Chromium through Playwright.

The server runs `portal demo` on a free port with a fresh SQLite database in a temporary
folder. Chromium is PORTAL_CHROMIUM, by default Debian's /usr/bin/chromium; `make e2e` and
`make test` install one first when there is none (.ci/setup). Without one the run stops at once
with a one-line message instead of failing in every test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    sync_playwright,
)

from app.services.phones import phone_display

ROOT = Path(__file__).resolve().parent.parent
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    path = os.environ.get("PORTAL_CHROMIUM") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(
            f"no browser at {path} (PORTAL_CHROMIUM): `make e2e` installs one, "
            "or set PORTAL_CHROMIUM to a Chromium binary",
            returncode=4,
        )
    return path


def launch_options() -> dict[str, Any]:
    return {"headless": True, "args": CHROMIUM_ARGS, "executable_path": chromium_path()}


def pytest_sessionstart() -> None:
    """Check for the browser before the server starts, so a missing one costs no time."""
    chromium_path()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a condition, not waiting for time to pass
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class ServerInfo:
    url: str
    env: dict[str, str]
    database: Path


@pytest.fixture(scope="session")
def server(server_info: ServerInfo) -> str:
    return server_info.url


@pytest.fixture(scope="session")
def server_info() -> Iterator[ServerInfo]:
    data_dir = Path(tempfile.mkdtemp(prefix="portal-e2e-"))
    port = _free_port()
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_DATABASE_URL": f"sqlite:///{data_dir}/portal.db",
        "PORTAL_DEMO": "1",
        "PORTAL_LOG_LEVEL": "WARNING",
        "PORTAL_BASE_URL": f"http://localhost:{port}",
    }
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://localhost:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield ServerInfo(url=url, env=env, database=data_dir / "portal.db")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(**launch_options())
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, persona: str = "maria") -> None:
    """The demo sign-in: the printed link, then one button."""
    page.goto(f"/demo/sign-in/{persona}")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/home")


@pytest.fixture
def signed_in(page: Page) -> Page:
    sign_in(page)
    return page


def eventually(page: Page, check: Any, *, timeout_ms: int = 10_000, what: str = "condition") -> Any:
    """Poll `check()` until it returns something truthy: waiting for a condition, not a time."""
    waited = 0
    while waited <= timeout_ms:
        value = check()
        if value:
            return value
        page.wait_for_timeout(100)
        waited += 100
    raise AssertionError(f"timed out waiting for {what}")


def received(browser: Browser, server: str, recipient: str) -> list[str]:
    """What the clinic sent to `recipient`, newest first, read as the front desk reads it on the
    demo's Outbox page (the outbox table keeps no text once a message is sent)."""
    desk = browser.new_context(base_url=server, locale="en-US")
    try:
        page = desk.new_page()
        page.goto("/demo/staff/front-desk")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/staff")
        page.goto("/staff/outbox")
        # The page shows a phone number as people read it ("(555) 010-1006"), not as kept.
        shown = phone_display(recipient)
        return [item.inner_text() for item in page.locator(".outbox li", has_text=shown).all()]
    finally:
        desk.close()


def controlled_by_the_worker(page: Page, context: BrowserContext) -> tuple[CDPSession, str]:
    """A CDP session that can deliver pushes, and the worker's registration, once the page is
    controlled by it: only a controlled window can be moved by a notification's click (an
    uncontrolled one gets a new window instead)."""
    cdp = context.new_cdp_session(page)
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(
            r["registrationId"] for r in event["registrations"] if not r["isDeleted"]
        ),
    )
    cdp.send("ServiceWorker.enable")
    page.evaluate("() => navigator.serviceWorker.ready")
    # A page whose navigation was under way while the worker activated can miss its
    # clients.claim() and stay uncontrolled; a navigation after "ready" is always controlled.
    if page.evaluate("() => navigator.serviceWorker.controller === null"):
        page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    eventually(page, lambda: registrations, what="the service worker registration")
    return cdp, registrations[-1]


def push_until_shown(page: Page, cdp: CDPSession, server: str, registration: str, data: str) -> Any:
    """Deliver a push through the DevTools protocol and wait for the worker's notification;
    returns the notifications shown, as [title, body, tag, url]. The protocol hands a push to
    the worker version running at that moment, and one being replaced just then can drop it:
    an unshown push is sent again (its tag replaces the first, so it never shows twice)."""
    for attempt in range(3):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": server, "registrationId": registration, "data": data},
        )
        try:
            return eventually(
                page,
                lambda: page.evaluate(
                    """() => navigator.serviceWorker.ready
                         .then(r => r.getNotifications())
                         .then(list => list.map(n => [n.title, n.body, n.tag, n.data.url]))"""
                ),
                timeout_ms=5_000,
                what="the notification",
            )
        except AssertionError:
            if attempt == 2:
                raise
    return None


def click_the_notification(context: BrowserContext) -> None:
    """A headless browser cannot click a system notification: the worker gets the event."""
    [worker] = context.service_workers
    worker.evaluate(
        """async () => {
            const [shown] = await self.registration.getNotifications();
            self.dispatchEvent(new NotificationEvent("notificationclick", {notification: shown}));
        }"""
    )
