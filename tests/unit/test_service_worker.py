"""The service worker's push and notificationclick handlers, run in Node with a stand-in
`self`: a push shows a notification that links only to this portal, and a click focuses an
open portal window and takes it to the linked screen, or opens one there."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.assets import service_worker_script

HARNESS = Path(__file__).resolve().parent.parent / "js" / "sw_harness.mjs"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js runs the service worker here")


def _replay(event: str, **given: Any) -> list[list[Any]]:
    assert NODE is not None
    request = {"source": service_worker_script(), "type": event, "windows": [], **given}
    done = subprocess.run(  # noqa: S603  (our own harness, our own input)
        [NODE, str(HARNESS)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    calls: list[list[Any]] = json.loads(done.stdout)
    return calls


def test_a_push_shows_its_notification_with_the_link_and_tag() -> None:
    payload = {
        "title": "You have a new test result",
        "body": "Open the portal.",
        "url": "/results",
        "tag": "result-1",
    }
    calls = _replay("push", payload=json.dumps(payload))
    [(kind, title, options)] = calls
    assert kind == "show"
    assert title == "You have a new test result"
    assert options["tag"] == "result-1"
    assert options["data"] == {"url": "/results"}


def test_a_push_never_links_to_another_site() -> None:
    payload = {"title": "t", "url": "https://evil.example/steal", "tag": "x"}
    [(_, _, options)] = _replay("push", payload=json.dumps(payload))
    assert options["data"] == {"url": "/home"}


def test_a_click_opens_the_linked_screen_when_no_portal_window_is_open() -> None:
    calls = _replay("notificationclick", data={"url": "/results/abc"})
    assert calls == [["close"], ["open", "https://portal.example/results/abc"]]


def test_a_click_focuses_an_open_portal_window_and_takes_it_there() -> None:
    calls = _replay(
        "notificationclick",
        data={"url": "/messages"},
        windows=["https://other.example/page", "https://portal.example/home"],
    )
    assert calls == [
        ["close"],
        ["navigate", "https://portal.example/messages"],
        ["focus", "https://portal.example/home"],
    ]


def test_an_unreadable_push_speaks_the_language_the_page_registered_the_worker_with() -> None:
    [(_, title, options)] = _replay("push", payload="not json", search="?lang=es")
    assert title == "Portal del paciente"
    assert options["body"] == "Abra el portal para ver lo nuevo."


def test_an_unreadable_push_follows_the_browser_when_the_page_did_not_say() -> None:
    [(_, title, _options)] = _replay("push", payload="not json", language="es-MX")
    assert title == "Portal del paciente"
    [(_, title, options)] = _replay("push", payload="not json")
    assert title == "Patient portal"
    assert options["body"] == "Open the portal to see what is new."
