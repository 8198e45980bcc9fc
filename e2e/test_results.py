"""Results that explain themselves, end to end: a new result opened from home shows its
value, range bar, plain-language explanation and trend, in English and Spanish, within the
page budget and without serious accessibility problems; a held result appears only once
the clinic releases it; a guardian never reaches a teenager's confidential result."""

from __future__ import annotations

import re
import sqlite3

import httpx
from playwright.sync_api import Browser, Page, expect

from bench.page_weight import BUDGET_TOTAL, measure
from e2e.conftest import PHONE, ServerInfo, sign_in
from e2e.test_accessibility import _serious


def _open_newest_test(page: Page) -> str:
    """Home → the new report → its first test; returns the test page's path."""
    page.goto("/home")
    results = page.locator("section", has=page.get_by_role("heading", name="Latest results"))
    results.get_by_role("link").filter(has_text="New").first.click()
    page.wait_for_url("**/results/*")
    page.get_by_role("region", name="Tests").get_by_role("link").first.click()
    page.wait_for_url("**/results/*/*")
    return page.url.split("://", 1)[1].split("/", 1)[1]


def test_a_new_result_opened_from_home_explains_itself(
    browser: Browser, signed_in: Page, server: str
) -> None:
    page = signed_in
    path = "/" + _open_newest_test(page)
    expect(page.locator(".result-value")).to_be_visible()
    expect(page.locator("svg.range-bar")).to_have_attribute(
        "aria-label", re.compile(r"^Your value .+, usual range .+")
    )
    expect(page.get_by_role("heading", name="What the test measures")).to_be_visible()
    expect(page.get_by_role("heading", name="Over time")).to_be_visible()
    assert page.locator("svg.trend circle").count() >= 2
    page.get_by_text("Show as a table").click()
    assert page.locator("details table tbody tr").count() >= 2
    assert _serious(page) == []

    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    with httpx.Client(base_url=server, cookies=cookies) as client:
        sizes = measure(client, path)
    assert sizes["html"] + sizes["css"] + sizes["js"] <= BUDGET_TOTAL

    spanish = browser.new_context(base_url=server, locale="es-ES", **PHONE)
    try:
        spanish.add_cookies(page.context.cookies())  # the same person, on a Spanish phone
        other = spanish.new_page()
        other.goto(path)
        expect(other.get_by_role("heading", name="Qué mide la prueba")).to_be_visible()
        expect(other.get_by_role("heading", name="A lo largo del tiempo")).to_be_visible()
    finally:
        spanish.close()


def test_a_guardian_cannot_open_a_teenager_s_confidential_result(
    signed_in: Page, server_info: ServerInfo
) -> None:
    with sqlite3.connect(server_info.database) as db:
        secret = db.execute(
            "SELECT public_id FROM lab_report WHERE confidential = 1 LIMIT 1"
        ).fetchone()[0]
    page = signed_in
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Lucas, 15"
    ).click()
    page.goto(f"/results/{secret}")
    expect(page.get_by_role("heading", level=1)).to_have_text("We can't find that page")


def test_a_held_result_appears_only_after_the_clinic_releases_it(
    browser: Browser, page: Page, server: str
) -> None:
    sign_in(page, "james")
    page.goto("/results")
    expect(page.get_by_text("Skin biopsy (pathology)")).to_have_count(0)

    clinic = browser.new_context(base_url=server, locale="en-US", **PHONE)
    try:
        desk = clinic.new_page()
        desk.goto("/demo/staff/admin")
        desk.get_by_role("button", name="Continue").click()
        desk.wait_for_url("**/staff")
        desk.get_by_role("link", name="Results").click()
        held = desk.locator("li", has_text="Skin biopsy (pathology)")
        expect(held.get_by_text("Held until")).to_be_visible()
        held.get_by_label("Note for the patient").fill("This is not cancer. No treatment needed.")
        held.get_by_role("button", name="Save and release now").click()
        desk.wait_for_url("**/staff/results")
        # The address was already /staff/results: wait for the page where it has left the list.
        expect(held).to_have_count(0)
    finally:
        clinic.close()

    page.goto("/results")
    expect(page.get_by_text("Skin biopsy (pathology)", exact=True)).to_be_visible()
    expect(page.get_by_text("This is not cancer. No treatment needed.")).to_be_visible()
