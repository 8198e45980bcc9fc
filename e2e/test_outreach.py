"""A campaign end to end, on a phone: the practice manager picks "enrolled, never booked
online", previews who it reaches and what they will read, and schedules it; the worker sends
it; a patient's tap on the link opens booking, and the campaign page counts the click."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE, eventually, received
from e2e.test_accessibility import problems_on


def _manager(browser: Browser, server: str) -> Page:
    clinic = browser.new_context(base_url=server, locale="en-US", **PHONE)
    clinic.set_default_timeout(15_000)
    page = clinic.new_page()
    page.goto("/demo/staff/manager")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/staff")
    return page


def _figure(page: Page, name: str) -> int:
    page.reload()
    return int(page.locator(f"dd#{name}").inner_text())


def test_a_manager_campaign_is_sent_and_its_link_opens_booking_and_counts(
    browser: Browser, server: str, signed_in: Page
) -> None:
    manager = _manager(browser, server)
    manager.get_by_role("link", name="Campaigns").click()
    assert problems_on(manager) == []
    manager.get_by_label("Name (only staff see it)").fill("Book your physical online")
    manager.get_by_label("Who it is for").select_option(label="Enrolled, never booked online")
    manager.get_by_label("Message").select_option(label="You can book online")
    manager.get_by_role("button", name="Preview").click()

    expect(
        manager.get_by_text("Campaign saved. Check the preview, then schedule it.")
    ).to_be_visible()
    expect(manager.locator("#audience")).to_have_text(
        re.compile(r"^[1-9]\d* (person is|people are)")
    )
    expect(manager.locator("p.sample[lang=en]")).to_contain_text(
        "did you know you can book your visits online"
    )
    expect(manager.locator("p.sample[lang=es]")).to_contain_text("Responda PARAR")
    assert problems_on(manager) == []
    manager.get_by_role("button", name="Schedule").click()
    expect(manager.get_by_text("Campaign scheduled.")).to_be_visible()
    campaign_page = manager.url

    # The worker takes it within seconds.
    eventually(manager, lambda: _figure(manager, "sent") >= 1, what="the campaign to be sent")
    texts = received(browser, server, "/go/")
    assert texts, "no campaign text in the outbox"
    link = re.search(r"https?://\S+/go/[A-Za-z0-9_-]+", texts[0])
    assert link is not None, texts[0]

    signed_in.goto(link.group(0))
    signed_in.wait_for_url("**/visits/new")
    expect(signed_in.get_by_role("heading", level=1)).to_be_visible()

    manager.goto(campaign_page)
    assert _figure(manager, "clicked") == 1

    # The clinic's What's new note, on the same phone-sized console.
    manager.goto("/staff/campaigns/news")
    assert problems_on(manager) == []
