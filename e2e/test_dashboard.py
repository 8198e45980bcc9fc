"""The dashboard end to end: the administrator opens it, sees that invited patients have not
joined, sends them reminders in one click and finds them in the outbox; a patient answers the
survey after booking a visit, and the month's "How easy was that?" figure moves."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from e2e.conftest import sign_in


def _admin(browser: Browser, server: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=server, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/demo/staff/admin")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/staff")
    return context, page


def _ease(page: Page) -> str:
    page.goto("/staff/dashboard")
    section = page.locator("section", has=page.locator("#metric-satisfaction"))
    return section.locator("p").first.inner_text()


def test_the_admin_sees_the_follow_up_and_sends_the_reminders(
    browser: Browser, server: str
) -> None:
    context, page = _admin(browser, server)
    try:
        page.get_by_role("navigation", name="Clinic console").get_by_role(
            "link", name="Dashboard"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Is the portal working?")
        opportunity = page.get_by_text(
            re.compile(r"^\d+ invited patients have not signed in within 7 days\.$")
        )
        expect(opportunity).to_be_visible()
        due = int(opportunity.inner_text().split()[0])
        page.get_by_role("link", name="Send a reminder").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Invited, not joined")
        page.get_by_role("button", name=re.compile(r"^Send \d+ reminders?$")).click()
        expect(page.get_by_role("status")).to_have_text("Reminders sent.")
        expect(page.get_by_text("No one is waiting for a reminder.")).to_be_visible()

        page.goto("/staff/outbox")
        reminders = page.locator(".outbox li", has_text="your patient portal is ready")
        expect(reminders.first).to_be_visible()
        assert reminders.count() == min(due, 50)
    finally:
        context.close()


def test_a_patient_answers_the_survey_after_booking_and_the_score_moves(
    browser: Browser, server: str, page: Page
) -> None:
    context, admin = _admin(browser, server)
    try:
        before = _ease(admin)
        sign_in(page, "david")
        page.goto("/visits/new/sick_visit")
        page.locator("nav.days a").nth(1).click()
        page.locator(".times-list a").first.click()
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("Your visit is booked.")).to_be_visible()

        survey = page.locator("form", has=page.get_by_text("How easy was that?"))
        survey.get_by_label("1", exact=True).first.check()
        survey.get_by_label("Anything to add?").fill("The times were hard to find.")
        survey.get_by_role("button", name="Send").click()
        expect(page.get_by_role("status")).to_have_text("Thank you for telling us.")

        admin.goto("/staff/dashboard")
        admin.get_by_role("button", name="Bring the figures up to date now").click()
        expect(admin.get_by_role("status")).to_have_text("The figures are up to date.")
        after = _ease(admin)
        assert after != before, (before, after)
        expect(admin.get_by_text("The times were hard to find.")).to_be_visible()
    finally:
        context.close()
