"""Acting for someone else, end to end: an adult invites a caregiver for appointments and
bills, the caregiver proves the invited email with a code, enrolls without a password and
sees exactly that, and revoking takes effect on the caregiver's next request. A parent cannot
reach another family's record by editing what the page sends."""

from __future__ import annotations

import re
import sqlite3

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE, ServerInfo, received, sign_in
from e2e.test_passkeys import _virtual_authenticator

CAREGIVER_EMAIL = "sam.helper@example.com"


def test_an_invited_caregiver_sees_appointments_and_bills_until_access_ends(
    browser: Browser, page: Page, server: str, server_info: ServerInfo
) -> None:
    sign_in(page, "david")
    page.goto("/more")
    page.get_by_role("link", name=re.compile("Who can see my record")).click()
    page.get_by_label("Their mobile phone or email").fill(CAREGIVER_EMAIL)
    page.get_by_label("Who they are to you").select_option("child")
    page.get_by_label("Appointments and bills").check()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text(
        "Invitation sent. They get access once they accept it."
    )
    body = received(browser, server, CAREGIVER_EMAIL)[0]
    assert "David" not in body  # no names, nothing about health
    link = re.search(r"https?://\S+/care/\S+", body).group(0)  # type: ignore[union-attr]

    carer_context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    carer_context.set_default_timeout(15_000)
    carer = carer_context.new_page()
    _virtual_authenticator(carer_context, carer)
    carer.goto(link)  # screen 1: who invites (a first name only), and what they will see
    expect(carer.get_by_role("heading", level=1)).to_have_text("Help David with their care")
    expect(carer.get_by_text("You will see: Appointments and bills.")).to_be_visible()
    carer.get_by_role("button", name="Send me a code").click()  # to the invited email
    expect(carer.get_by_label("Code")).to_be_visible()
    # Read as the demo's outbox page shows it: the outbox table itself drops a message's
    # text once the worker has sent it, which may already have happened.
    code_text = received(browser, server, CAREGIVER_EMAIL)[0]
    code = re.search(r"is (\d{6})\.", code_text).group(1)  # type: ignore[union-attr]
    carer.get_by_label("Code").fill(code)
    carer.get_by_label("Your full name").fill("Sam Chen")
    carer.get_by_role("button", name="Accept").click()
    carer.wait_for_url("**/welcome")  # screen 2: a passkey for next time
    expect(carer.get_by_role("heading", level=1)).to_have_text("You are in, Sam")
    carer.get_by_role("button", name="Make a passkey").click()
    carer.wait_for_url("**/home")  # screen 3: David's record, as far as the scope goes
    expect(carer.get_by_role("status")).to_have_text("You are looking at David's record.")
    tabs = carer.get_by_role("navigation", name="Main")
    expect(tabs.get_by_role("link")).to_have_text(["Home", "Visits", re.compile("^More")])
    tabs.get_by_role("link", name="Visits").click()
    carer.wait_for_url("**/visits")
    expect(carer.get_by_role("heading", level=1)).to_have_text("Visits")
    carer.goto("/results")  # not in the scope, even typed by hand
    expect(carer.get_by_role("heading", level=1)).to_have_text("This page is not available to you")

    page.reload()
    expect(page.get_by_text("Sam Chen")).to_be_visible()
    page.get_by_role("button", name="End access for Sam Chen").click()
    expect(page.get_by_role("status")).to_have_text(
        "Access ended. They can no longer see your record."
    )
    carer.goto("/visits")  # the caregiver's next request
    expect(carer.get_by_role("heading", level=1)).to_have_text("This page is not available to you")

    page.goto("/access-history")
    expect(page.get_by_text("Sam Chen")).to_be_visible()
    carer_context.close()


def test_a_parent_cannot_open_another_family_s_record_by_editing_the_page(
    signed_in: Page, server_info: ServerInfo
) -> None:
    page = signed_in
    with sqlite3.connect(server_info.database) as db:
        stranger = db.execute("SELECT public_id FROM patient WHERE mrn = 'RFH-100006'").fetchone()[
            0
        ]
    # Change which record the "Emma, 7" button asks for, as someone editing the page would.
    page.locator('nav.profiles input[name="patient"]').nth(2).evaluate(
        "(input, value) => { input.value = value; }", stranger
    )
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Emma, 7"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("We can't find that page")
    page.goto("/home")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria")
    expect(page.get_by_text("James")).to_have_count(0)


def test_a_guardian_sees_no_confidential_visit_of_an_adolescent(signed_in: Page) -> None:
    page = signed_in
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Lucas, 15"
    ).click()
    tabs = page.get_by_role("navigation", name="Main")
    expect(tabs.get_by_role("link")).to_have_text(
        ["Home", "Visits", "Results", re.compile("^More")]
    )
    tabs.get_by_role("link", name="Visits").click()
    page.wait_for_url("**/visits")
    expect(page.get_by_text("Well-child visit").first).to_be_visible()
    expect(page.get_by_text("Follow-up visit")).to_have_count(0)  # his confidential visit
