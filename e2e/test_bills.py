"""Bills end to end with the demo processor: Maria pays her family's bill in two taps from
home and sees the receipt; a declined card says why and changes nothing; a bills-only
caregiver pays for a parent and sees nothing else of the record; and someone without an
account pays from the code on a paper bill."""

from __future__ import annotations

import re
import sqlite3

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE, ServerInfo, received, sign_in

CAREGIVER_EMAIL = "pat.bills@example.com"


def test_a_patient_pays_in_two_taps_from_home_and_sees_the_receipt(signed_in: Page) -> None:
    page = signed_in
    bill = page.locator("section", has=page.get_by_role("heading", name="You owe $155.00"))
    bill.get_by_role("link", name="Pay", exact=True).click()  # tap one
    page.wait_for_url("**/bills/pay")
    page.get_by_role("button", name="Pay now with Visa ending 4242").click()  # tap two
    page.wait_for_url("**/bills/receipts/*")
    expect(page.get_by_role("status")).to_have_text("Thank you. Your payment went through.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    receipt = page.get_by_label("Receipt")
    expect(receipt).to_contain_text("$155.00")
    expect(receipt).to_contain_text("Maria Lopez")
    expect(receipt).to_contain_text("Visa ending 4242")
    page.get_by_role("link", name="Back to bills").click()
    expect(page.get_by_role("heading", name="Nothing to pay")).to_be_visible()
    # Lucas's visit was confidential: his mother's bill names no visit of his.
    expect(page.get_by_text("A visit")).to_be_visible()


def test_a_declined_card_gives_a_clear_message_and_changes_nothing(page: Page) -> None:
    sign_in(page, "james")
    page.goto("/bills/pay")
    expect(page.get_by_text("You owe $90.00")).to_be_visible()
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url("**/bills/pay")
    expect(page.get_by_role("alert")).to_have_text(
        "Your card was declined. Nothing was charged. Try another card, or call your bank."
    )
    expect(page.get_by_text("You owe $90.00")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_value("")  # the number is not sent back


def test_a_bills_only_caregiver_pays_for_a_parent_and_sees_nothing_else(
    browser: Browser, page: Page, server: str
) -> None:
    sign_in(page, "david")
    page.goto("/sharing")
    page.get_by_label("Their mobile phone or email").fill(CAREGIVER_EMAIL)
    page.get_by_label("Who they are to you").select_option("child")
    page.get_by_label("Bills only").check()
    page.get_by_role("button", name="Send invitation").click()
    body = received(browser, server, CAREGIVER_EMAIL)[0]
    link = re.search(r"https?://\S+/care/\S+", body).group(0)  # type: ignore[union-attr]

    carer_context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    carer_context.set_default_timeout(15_000)
    carer = carer_context.new_page()
    carer.goto(link)
    carer.get_by_role("button", name="Send me a code").click()
    code_text = received(browser, server, CAREGIVER_EMAIL)[0]
    code = re.search(r"(\d{6})", code_text).group(1)  # type: ignore[union-attr]
    carer.get_by_label("Code").fill(code)
    carer.get_by_label("Your full name").fill("Pat Chen")
    carer.get_by_role("button", name="Accept").click()
    carer.wait_for_url("**/welcome")
    carer.goto("/home")
    tabs = carer.get_by_role("navigation", name="Main")
    expect(tabs.get_by_role("link")).to_have_text(["Home", re.compile("^More")])
    carer.get_by_role("link", name="Pay", exact=True).click()
    carer.get_by_label("Card number").fill("4242 4242 4242 4242")
    carer.get_by_role("button", name="Pay", exact=True).click()
    carer.wait_for_url("**/bills/receipts/*")
    expect(carer.locator("#notice")).to_have_text("Thank you. Your payment went through.")
    expect(carer.get_by_text("You are looking at David's record.")).to_be_visible()
    expect(carer.get_by_label("Receipt")).to_contain_text("$50.00")
    for path in ("/visits", "/results", "/messages"):
        carer.goto(path)
        expect(carer.get_by_role("heading", level=1)).to_have_text(
            "This page is not available to you"
        )
    carer_context.close()


def test_guest_pay_works_from_a_statement_code(page: Page, server_info: ServerInfo) -> None:
    with sqlite3.connect(server_info.database) as db:
        born = db.execute("SELECT birth_date FROM patient WHERE mrn = 'RFH-100006'").fetchone()[0]
    page.goto("/pay")
    page.get_by_label("Bill code").fill("WILSON2046")
    page.get_by_label("Patient's date of birth").fill("1901-01-01")
    page.get_by_role("button", name="Find my bill").click()
    expect(page.get_by_role("alert")).to_contain_text("could not find a bill")
    page.get_by_label("Patient's date of birth").fill(str(born))
    page.get_by_role("button", name="Find my bill").click()
    page.wait_for_url("**/pay/statement")
    expect(page.get_by_text("You owe $90.00")).to_be_visible()
    page.get_by_label("Another amount").check()
    page.get_by_label("Amount in dollars").fill("40")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url("**/pay/receipts/*")
    expect(page.get_by_role("status")).to_have_text("Thank you. Your payment went through.")
    expect(page.get_by_label("Receipt")).to_contain_text("$40.00")
    expect(page.get_by_label("Receipt")).to_contain_text("$50.00")  # the balance now
