"""Visits end to end on a phone: the suggested visit booked in two taps from home, seen on
home, added to the calendar, moved and cancelled; a parent booking for a child; a late
cancellation that shows the policy and the number to call; a waitlisted patient taking an
earlier time from the link they were texted."""

from __future__ import annotations

import re

from icalendar import Calendar
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE, eventually, received, sign_in

JAMES_PHONE = "+15550101006"
MAIN = "Riverside Main Clinic"


def _choose_day(page: Page, index: int) -> None:
    """Tap a day, and wait for its times (not the day shown before it)."""
    day = page.locator("nav.days a").nth(index)
    day.click()
    expect(day).to_have_attribute("aria-current", "true")


def _visit_path(page: Page) -> str:
    return "/" + page.url.split("/", 3)[3].split("?")[0]


def test_the_suggested_visit_is_booked_in_two_taps_then_moved_and_cancelled(
    signed_in: Page,
) -> None:
    page = signed_in
    offer = page.locator("section.offer")
    expect(offer.get_by_role("heading")).to_have_text("Your care team asked for a follow-up visit")
    offer.get_by_role("link", name="Book", exact=True).click()  # tap 1
    expect(page.get_by_role("heading", level=1)).to_have_text("Book this visit?")
    page.get_by_role("button", name="Confirm").click()  # tap 2
    expect(page.get_by_role("status")).to_have_text("Your visit is booked.")
    visit = _visit_path(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page.locator(f"a[href='{visit}']")).to_be_visible()
    expect(page.locator("section.offer")).to_have_count(0)  # booked: no longer offered

    page.goto(visit)
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to calendar").click()
    events = list(Calendar.from_ical(download.value.path().read_bytes()).walk("VEVENT"))
    assert len(events) == 1
    assert str(events[0]["summary"]).startswith("Follow-up visit")

    page.get_by_role("link", name="Change time").click()
    _choose_day(page, -1)  # a day further on
    page.locator(".times-list a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Move your visit to this time?")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Your visit has a new time.")
    moved = _visit_path(page)
    assert moved != visit

    page.get_by_role("link", name="Cancel visit").click()
    page.get_by_label("I cannot make it").check()
    page.get_by_role("button", name="Cancel visit").click()
    expect(page.get_by_role("status")).to_have_text("Your visit is cancelled.")
    expect(page.locator(f"#visit-list a[href='{moved}']")).to_have_count(0)


def test_a_parent_books_a_visit_for_a_child(signed_in: Page) -> None:
    page = signed_in
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Emma, 7"
    ).click()
    expect(page.get_by_text("You are looking at Emma's record.")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Visits").click()
    page.get_by_role("link", name="Book a visit").click()
    page.get_by_role("link", name=re.compile("^Well-child visit")).click()
    _choose_day(page, -1)
    page.locator(".times-list a").first.click()
    expect(page.get_by_text("For Emma.")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Your visit is booked.")).to_be_visible()
    expect(page.get_by_text("You are looking at Emma's record.")).to_be_visible()


def test_a_late_cancellation_shows_the_policy_and_the_phone_number(page: Page) -> None:
    sign_in(page, "david")
    page.goto("/visits")
    page.locator("#visit-list a").first.click()  # his visit within a day
    page.get_by_role("link", name="Cancel visit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Please call to change this visit")
    expect(page.get_by_text("so it cannot be changed online")).to_be_visible()
    call = page.get_by_role("link", name=re.compile(r"^Call \(555\)"))
    expect(call).to_have_attribute("href", re.compile(r"^tel:\d{10}$"))


def _book_sick_visit(page: Page, *, last: bool) -> str:
    """A sick visit at the main clinic on the second day with free times: its first time, or
    its last."""
    page.goto("/visits/new/sick_visit")
    # Changing "Where" refreshes the days through htmx, which the page adds after it paints;
    # without it the person presses "Show times" instead.
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_label("Where").select_option(label=MAIN)
    # The days now come from that location alone (their links carry it).
    expect(page.locator("nav.days a").first).to_have_attribute(
        "href", re.compile(r"location=[^&]+$")
    )
    _choose_day(page, 1)
    expect(page.locator(".times-list a").first).to_contain_text(MAIN)
    times = page.locator(".times-list a")
    (times.last if last else times.first).click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Your visit is booked.")
    return _visit_path(page)


def test_a_waitlisted_patient_takes_an_earlier_time_from_the_link(
    browser: Browser, page: Page, server: str
) -> None:
    sign_in(page, "david")
    early = _book_sick_visit(page, last=False)

    james_context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    james_context.set_default_timeout(15_000)
    james = james_context.new_page()
    sign_in(james, "james")
    late = _book_sick_visit(james, last=True)
    james.get_by_role("button", name="Tell me if something earlier opens").click()
    expect(james.get_by_role("status")).to_have_text("We will tell you if an earlier time opens.")

    page.goto(early)
    page.get_by_role("link", name="Cancel visit").click()
    page.get_by_role("button", name="Cancel visit").click()
    expect(page.get_by_role("status")).to_have_text("Your visit is cancelled.")

    def offer_link() -> str | None:
        for text in received(browser, server, JAMES_PHONE):
            found = re.search(r"https?://\S+/visits/offers/[\w-]+", text)
            if found:
                return found.group(0)
        return None

    link = eventually(page, offer_link, what="the waitlist offer text")
    assert "earlier time" in received(browser, server, JAMES_PHONE)[0]
    james.goto(link)
    expect(james.get_by_role("heading", level=1)).to_have_text("An earlier time opened up")
    james.get_by_role("button", name="Take this time").click()
    expect(james.get_by_role("status")).to_have_text("Your visit has a new time.")
    assert _visit_path(james) != late
    james_context.close()
