"""The access log, as uvicorn writes it with our logging set-up, carries no secret link and
nothing staff searched for."""

from __future__ import annotations

import io
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn

from app.logs import redact_target, uvicorn_log_config


async def _ok(scope: dict[str, object], receive: object, send: object) -> None:
    """A stand-in app: what is logged depends on the request, not on the answer."""
    assert scope["type"] in {"http", "lifespan"}
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@pytest.fixture
def access_log() -> Iterator[tuple[str, io.StringIO]]:
    """A real uvicorn server on a free port, its access log written into a buffer."""
    out = io.StringIO()
    config = uvicorn_log_config()
    config["handlers"]["access"]["stream"] = out
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_ok, host="127.0.0.1", port=port, log_config=config, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.05)  # polling for the condition, not waiting for a time
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", out
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_secret_links_and_searches_are_redacted_in_uvicorn_s_access_log(
    access_log: tuple[str, io.StringIO],
) -> None:
    base, out = access_log
    secret_paths = (
        "/enroll/EnrollSecret1",
        "/care/CareSecret2",
        "/staff/enroll/StaffSecret3",
        "/staff/enroll/StaffSecret4/options",
        "/staff?q=garcia%203%2F14%2F1985",
        "/staff/audit?mrn=RFH-100150&staff_email=rosa%40clinic.org&since=2026-01-01",
        "/sign-in?next=%2Fcare%2FCareSecret5",
    )
    for path in secret_paths:
        with urllib.request.urlopen(base + path) as response:  # noqa: S310 (loopback)
            assert response.status == 200
    logged = out.getvalue()
    assert logged.count('"GET ') == len(secret_paths)
    for secret in ("Secret", "garcia", "1985", "RFH-100150", "rosa"):
        assert secret not in logged
    assert "/care/… " in logged
    assert "/staff/enroll/… " in logged
    assert "/staff?q=… " in logged
    assert "mrn=…&staff_email=…&since=2026-01-01" in logged  # what is harmless stays


@pytest.mark.parametrize(
    "sent",
    [
        "/%63are/CareSecret6",
        "/care%2FCareSecret6",
        "/care%252FCareSecret6",
        "/%65nroll/EnrollSecret7/x",
        "/CARE/CareSecret6",
        "/Enroll/EnrollSecret7",
        "/care/Care%3FSecret6",
        "/visits/offers/OfferSecret8",
        "/visits//offers/OfferSecret8",
        "//care///CareSecret6",
    ],
)
def test_secret_links_are_redacted_however_their_path_is_spelt(sent: str) -> None:
    """The router decodes a path before it routes it, so the log must too."""
    logged = redact_target(sent)
    assert "Secret" not in logged
    assert logged.lower().replace("//", "/") in ("/care/…", "/enroll/…", "/visits/offers/…")


def test_harmless_queries_stay_readable() -> None:
    assert redact_target("/sign-in/code/check?joining=1") == "/sign-in/code/check?joining=1"
    assert redact_target("/staff/results?show=held&page=2") == "/staff/results?show=held&page=2"
    assert redact_target("/static/css/portal.css?v=ab12") == "/static/css/portal.css?v=ab12"
    assert redact_target("/join/MAIN") == "/join/MAIN"  # a location code is printed on posters
    assert redact_target("/x?garcia%201985") == "/x?…"
