"""Every screen a patient, a caregiver and each staff role can reach, in English and Spanish:
axe-core finds no serious or critical violation, every control is a 44x44 px target (links
inside running text excepted), and no page is wider than a 320 px screen.

axe-core is the pinned npm release that `make e2e` fetches into e2e/vendor (never served to
patients); it is run in the page through the DevTools protocol, so the CSP does not apply.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from e2e.conftest import PHONE, ROOT, ServerInfo

AXE = ROOT / "e2e" / "vendor" / "axe.min.js"
LOCALES = ["en-US", "es-ES"]
NARROW = {"width": 320, "height": 640}

PATIENT_PAGES = [
    "/home",
    "/bills",
    "/bills/pay",
    "/bills/plan",
    "/messages",
    "/messages/new",
    "/messages/new?topic=question",
    "/messages/new?topic=refill",
    "/visits",
    "/visits?show=past",
    "/visits/new",
    "/visits/new/sick_visit",
    "/results",
    "/more",
    "/notifications",
    "/sharing",
    "/access-history",
    "/passkeys",
    "/devices",
    "/welcome",
]
PUBLIC_PAGES = [
    "/",
    "/pay",
    "/offline",
    "/demo",
    "/demo/sign-in/maria",
    "/demo/staff/admin",
    "/sign-in/code",
    "/sign-in/code?by=email",
    "/sign-in/code/check",
    "/staff/sign-in",
    "/no-such-page",
]
STAFF_ROLES = ["front_desk", "nurse", "clinician", "billing", "admin", "manager"]
DEMO_DESK = "tom.becker@riverside.example"

# Buttons, links and fields; a checkbox or radio is measured by the label that wraps it.
MEASURE_TARGETS = """() => {
  const found = [];
  const seen = new Set();
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]');
  for (const control of controls) {
    const wrapped = control.matches('input[type=checkbox], input[type=radio]');
    const target = wrapped && control.closest('label') ? control.closest('label') : control;
    if (seen.has(target)) continue;
    seen.add(target);
    if (!target.checkVisibility({visibilityProperty: true})) continue;
    const box = target.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right <= 0) continue;  // e.g. the skip link
    if (control.tagName === 'A' && getComputedStyle(control).display === 'inline') {
      const text = (node) => (node.textContent || '').replace(/\\s+/g, ' ').trim();
      if (text(control.parentElement).length > text(control).length) continue;  // in a sentence
    }
    if (box.width < 43.5 || box.height < 43.5) {
      const name = (control.getAttribute('aria-label') || control.textContent || control.name || '')
        .replace(/\\s+/g, ' ').trim().slice(0, 40);
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      found.push(`${control.tagName.toLowerCase()} "${name}" ${size}`);
    }
  }
  return found;
}"""


def _axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing: run `make {AXE.relative_to(ROOT)}` (or `make e2e`)")
    return AXE.read_text(encoding="utf-8")


def _serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"axe {v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def problems_on(page: Page) -> list[str]:
    """What a person on a small phone, or with a screen reader, would trip over here."""
    found = _serious(page)
    found += [f"small target: {line}" for line in page.evaluate(MEASURE_TARGETS)]
    page.set_viewport_size(NARROW)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > NARROW["width"]:
        found.append(f"{width}px wide on a {NARROW['width']}px screen")
    page.set_viewport_size(PHONE["viewport"])
    return found


def check(page: Page, path: str, found: dict[str, list[str]], label: str = "") -> None:
    page.goto(path)
    problems = problems_on(page)
    if problems:
        found[f"{label}{path}"] = problems


def _context(browser: Browser, server: str, locale: str) -> BrowserContext:
    context = browser.new_context(base_url=server, locale=locale, **PHONE)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture(params=LOCALES)
def locale_context(request: pytest.FixtureRequest, browser: Browser, server: str) -> Iterator[Any]:
    context = _context(browser, server, request.param)
    yield context
    context.close()


def _result_pages(page: Page) -> list[str]:
    """A report and one of its tests, when this record shows results."""
    page.goto("/results")
    report = page.locator("a[href^='/results/']").first
    if not report.count():
        return []
    report_path = str(report.get_attribute("href")).split("/")[:3]
    test_path = page.locator(f"a[href^='{'/'.join(report_path)}/']").first.get_attribute("href")
    return ["/".join(report_path), str(test_path)]


def _message_pages(page: Page) -> list[str]:
    """A conversation, when this record shows messages."""
    page.goto("/messages")
    thread = page.locator("a[href^='/messages/']:not([href^='/messages/new'])").first
    return [str(thread.get_attribute("href"))] if thread.count() else []


def sign_in(page: Page, persona: str) -> None:
    """The demo sign-in in any language: the printed link, then its one button."""
    page.goto(f"/demo/sign-in/{persona}")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/home")


def _switch_to(page: Page, index: int) -> str:
    """Tap the index-th chip in "Whose record"; returns its text."""
    chip = page.locator("nav.profiles button").nth(index)
    name = chip.inner_text()
    chip.click()
    expect(page.locator("nav.profiles button").nth(index)).to_have_attribute("aria-current", "true")
    return name


def test_public_pages(locale_context: BrowserContext, server_info: ServerInfo) -> None:
    page = locale_context.new_page()
    with sqlite3.connect(server_info.database) as db:
        (code,) = db.execute("SELECT code FROM location ORDER BY code LIMIT 1").fetchone()
    found: dict[str, list[str]] = {}
    for path in [*PUBLIC_PAGES, f"/join/{code}"]:
        check(page, path, found)
    assert found == {}


@pytest.mark.parametrize("persona", ["maria", "david", "james"])
def test_every_record_a_person_can_open(locale_context: BrowserContext, persona: str) -> None:
    """The person's own pages, then each record they look after (a child, a teen, a parent),
    including the pages that record's access leaves out."""
    page = locale_context.new_page()
    sign_in(page, persona)
    found: dict[str, list[str]] = {}
    chips = page.locator("nav.profiles button").count()
    for index in range(max(chips, 1)):
        page.goto("/home")
        label = f"{_switch_to(page, index)}: " if chips else ""
        for path in PATIENT_PAGES + _result_pages(page) + _message_pages(page):
            check(page, path, found, label)
    assert found == {}


def _set_role(database: Path, role: str) -> None:
    with sqlite3.connect(database) as db:
        db.execute("UPDATE staff_user SET role = ? WHERE email = ?", (role, DEMO_DESK))


def test_every_console_page_each_staff_role_can_open(
    locale_context: BrowserContext, server_info: ServerInfo
) -> None:
    page = locale_context.new_page()
    page.goto("/demo/staff/front-desk")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/staff")
    found: dict[str, list[str]] = {}
    try:
        for role in STAFF_ROLES:
            _set_role(server_info.database, role)
            page.goto("/staff?q=Lopez")
            patient = page.locator("a[href^='/staff/patients/']").first.get_attribute("href")
            tabs = page.locator("nav.staff-nav a").evaluate_all(
                "links => links.map(link => link.getAttribute('href'))"
            )
            paths = ["/staff", "/staff?q=Lopez", str(patient), *tabs]
            if "/staff/results" in tabs:
                paths += ["/staff/results?show=held", "/staff/results?show=no_note"]
                paths.append("/staff/results?show=all&page=2")  # the pager with both buttons
            if "/staff/messages" in tabs:
                page.goto("/staff/messages")
                thread = page.locator("a[href^='/staff/messages/']").first
                if thread.count():
                    paths.append(str(thread.get_attribute("href")))
                paths += ["/staff/messages?view=mine", "/staff/messages?view=morning"]
                if role == "admin":
                    paths.append("/staff/messages/templates")
            for path in dict.fromkeys(paths):
                check(page, path, found, f"{role}: ")
    finally:
        _set_role(server_info.database, "front_desk")
    assert found == {}


def test_a_page_outside_a_caregivers_access_keeps_the_usual_frame(
    browser: Browser, server: str
) -> None:
    context = _context(browser, server, "en-US")
    try:
        page = context.new_page()
        sign_in(page, "maria")
        _switch_to(page, 1)  # Lucas, 15: his messages are his own
        response = page.goto("/messages")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "This page is not available to you"
        )
        expect(page.locator("#who")).to_contain_text("Lucas Lopez")
        expect(page.get_by_role("navigation", name="Whose record")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    finally:
        context.close()


def test_changing_the_language_changes_the_whole_document(page: Page) -> None:
    """Not a swap of the body alone: <html lang> and the description change with the text.
    (Signed out, so no account keeps the choice for the tests after this one.)"""
    page.goto("/")
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change language").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Su salud, en su bolsillo")
    assert page.locator("html").get_attribute("lang") == "es"
    description = page.locator("meta[name=description]").get_attribute("content")
    assert description is not None
    assert re.search(r"\bsalud\b", description)
