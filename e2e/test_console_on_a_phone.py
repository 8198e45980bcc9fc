"""The clinic console on a 390 px phone: long pages fold what is read now and then, so the
page's own actions stay near the top, and what is folded is one tap (or Enter) away."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE


@pytest.fixture
def admin(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/demo/staff/admin")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/staff")
    yield page
    context.close()


def test_the_dashboard_folds_each_figures_months_and_opens_them_from_the_keyboard(
    admin: Page,
) -> None:
    admin.goto("/staff/dashboard")
    enrollment = admin.get_by_role("table", name=re.compile("^Enrollment"))
    expect(enrollment).to_be_hidden()
    months = admin.locator("section", has=admin.locator("#metric-enrollment")).get_by_text(
        "Month by month"
    )
    months.focus()
    admin.keyboard.press("Enter")
    expect(enrollment).to_be_visible()
    expect(enrollment.get_by_role("columnheader", name="Month")).to_be_visible()
    # With every monthly table folded the page is a few screens, not twenty.
    assert admin.evaluate("document.documentElement.scrollHeight") < 12_000


def test_weekly_hours_fold_per_clinician_and_adding_hours_is_near_the_top(admin: Page) -> None:
    admin.goto("/staff/scheduling/inventory")
    remove = admin.get_by_role("button", name="Remove these hours")
    expect(remove.first).to_be_hidden()
    first = admin.locator("#hours-title ~ details > summary").first
    expect(first).to_have_text(re.compile(r" · \d+ blocks? of hours$"))
    add = admin.get_by_text("Add weekly hours")
    assert add.bounding_box()["y"] < 3 * 844  # type: ignore[index]
    first.click()
    expect(remove.first).to_be_visible()


def test_reply_templates_fold_to_their_titles_and_the_new_template_form_is_in_reach(
    admin: Page,
) -> None:
    admin.goto("/staff/messages/templates")
    expect(admin.get_by_role("button", name="Remove").first).to_be_hidden()
    new_title = admin.get_by_role("heading", name="New template")
    assert new_title.bounding_box()["y"] < 3 * 844  # type: ignore[index]
    admin.locator("summary", has_text="Please book a visit").click()
    expect(admin.get_by_role("button", name="Remove").first).to_be_visible()
