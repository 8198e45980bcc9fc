"""axe-core on every page that exists: no serious or critical violation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser

from e2e.conftest import PHONE, sign_in

SIGNED_IN_PAGES = [
    "/home",
    "/messages",
    "/visits",
    "/visits?show=past",
    "/results",
    "/more",
    "/notifications",
    "/sharing",
    "/access-history",
    "/passkeys",
    "/devices",
]
PUBLIC_PAGES = ["/", "/offline", "/demo", "/demo/sign-in/maria", "/no-such-page"]


def _serious(page) -> list[str]:  # type: ignore[no-untyped-def]
    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in {"serious", "critical"}
    ]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_page_has_no_serious_violation(browser: Browser, server: str, path: str) -> None:
    context = browser.new_context(base_url=server, **PHONE)
    try:
        page = context.new_page()
        page.goto(path)
        assert _serious(page) == []
    finally:
        context.close()


def test_signed_in_pages_have_no_serious_violation(browser: Browser, server: str) -> None:
    context = browser.new_context(base_url=server, **PHONE)
    try:
        page = context.new_page()
        sign_in(page)
        found = {}
        for path in SIGNED_IN_PAGES:
            page.goto(path)
            problems = _serious(page)
            if problems:
                found[path] = problems
        assert found == {}
    finally:
        context.close()
