"""The clinic console on a 390 px phone: long pages fold what is read now and then, so the
page's own actions stay near the top, and what is folded is one tap (or Enter) away; a table
wider than a 320 px phone shows that it scrolls sideways."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from statistics import median

import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

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


def _shade(page: Page, box: Locator, side: str) -> float:
    """How dark the box's outermost column of pixels on one side is (0 white, 255 black):
    the median down the column, so the odd letter or row line does not count."""
    rect = box.bounding_box()
    assert rect is not None
    x = rect["x"] + 1 if side == "left" else rect["x"] + rect["width"] - 2
    png = page.screenshot(clip={"x": x, "y": rect["y"], "width": 1, "height": rect["height"]})
    column = Image.open(io.BytesIO(png)).convert("L").tobytes()  # one byte a pixel
    return 255 - median(column)


def test_a_table_wider_than_a_small_phone_shows_it_scrolls_sideways(
    browser: Browser, server: str
) -> None:
    context = browser.new_context(
        base_url=server,
        locale="en-US",
        viewport={"width": 320, "height": 640},
        device_scale_factor=1,  # one CSS pixel, one screenshot pixel
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/demo/staff/admin")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/staff")
    page.goto("/staff/dashboard")
    box = page.locator("div.scroll-x[role=region]", has=page.get_by_role("table"))
    box.scroll_into_view_if_needed()
    assert box.evaluate("b => b.scrollWidth > b.clientWidth + 40")  # more than the eye sees
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # the page stays put

    # At the start a shadow on the right says there is more that way, none on the left.
    assert _shade(page, box, "right") > 25
    assert _shade(page, box, "left") < 5
    # Scrolled to the end: the other way round.
    box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    assert _shade(page, box, "left") > 25
    assert _shade(page, box, "right") < 5
    # The box still takes the focus, so a keyboard scrolls it too.
    box.evaluate("b => { b.scrollLeft = 0; }")
    box.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.activeElement.matches('.scroll-x') && document.activeElement.scrollLeft > 0"
    )
    context.close()
