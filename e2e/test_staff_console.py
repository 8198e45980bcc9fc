"""The clinic's side of enrollment, end to end: the first administrator signs up from a
one-time link, the front desk invites a patient whose link (read from the demo outbox)
enrolls them in three screens, and a clinic poster enrolls a matching person while a
non-matching one gets the same answer and becomes a join request."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import date

from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.services.phones import phone_display
from e2e.conftest import PHONE, ROOT, ServerInfo, received
from e2e.test_passkeys import _virtual_authenticator

INVITED_MRN = "RFH-100161"  # an adult with a mobile phone on file
POSTER_MRN = "RFH-100170"


def _record(server_info: ServerInfo, mrn: str) -> tuple[str, str, date, str]:
    with sqlite3.connect(server_info.database) as db:
        given, family, birth, phone = db.execute(
            "SELECT given_name, family_name, birth_date, phone FROM patient WHERE mrn = ?", (mrn,)
        ).fetchone()
    return given, family, date.fromisoformat(birth), phone


def _new_phone(browser: Browser, server: str) -> BrowserContext:
    context = browser.new_context(base_url=server, locale="en-US", **PHONE)
    context.set_default_timeout(15_000)
    return context


def _staff_link(server_info: ServerInfo) -> str:
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "create-staff",
            "--role",
            "admin",
            "--email",
            "first.admin@riverside.example",
            "--given",
            "Fran",
            "--family",
            "Admin",
        ],
        cwd=ROOT,
        env=server_info.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    link = re.search(r"http://\S+/staff/enroll/\S+", printed)
    assert link is not None, printed
    return link.group(0)


def test_first_admin_signs_up_from_the_printed_link_and_back_in_with_one_tap(
    context: BrowserContext, page: Page, server_info: ServerInfo
) -> None:
    link = _staff_link(server_info)
    _virtual_authenticator(context, page)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Fran Admin")
    page.get_by_role("button", name="Make a passkey").click()
    page.wait_for_url("**/staff")
    expect(page.get_by_role("heading", name="Find a patient")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/staff/sign-in")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url("**/staff")
    expect(page.get_by_text("Fran Admin")).to_be_visible()

    page.goto(link)  # the link worked once
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")


def test_front_desk_invites_a_patient_whose_texted_link_enrolls_them_in_three_screens(
    browser: Browser, page: Page, server: str, server_info: ServerInfo
) -> None:
    given, family, birth, phone = _record(server_info, INVITED_MRN)
    # The clinic: find the patient by name and date of birth, send the link by text.
    page.goto("/demo/staff/front-desk")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/staff")
    page.get_by_label("Name, date of birth or MRN").fill(
        f"{family} {birth.month}/{birth.day}/{birth.year}"
    )
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=re.compile(f"{family}, {given}")).click()
    expect(page.get_by_text("Not invited yet")).to_be_visible()
    page.get_by_role("button", name="Send by text message").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent by text message")

    page.get_by_role("link", name="Outbox").click()
    texted = page.locator(".outbox li", has_text=phone_display(phone)).first  # "(555) ..."
    link = texted.get_by_role("link").get_attribute("href")
    assert link is not None
    assert "/enroll/" in link
    assert given not in (texted.text_content() or "")  # no health or personal detail

    # The patient, on their own phone.
    phone_context = _new_phone(browser, server)
    patient = phone_context.new_page()
    _virtual_authenticator(phone_context, patient)
    patient.goto(link)  # screen 1
    patient.get_by_label("Date of birth").fill(birth.isoformat())
    patient.get_by_role("button", name="Continue").click()
    patient.wait_for_url("**/welcome")  # screen 2
    patient.get_by_role("button", name="Make a passkey").click()
    patient.wait_for_url("**/home")  # screen 3
    expect(patient.get_by_role("heading", level=1)).to_have_text(f"Hello, {given}")

    # Sign out, then back in with one tap.
    patient.goto("/more")
    patient.get_by_role("button", name="Sign out").click()
    expect(patient.get_by_text("You are signed out.")).to_be_visible()
    patient.get_by_role("button", name="Sign in with a passkey").click()
    patient.wait_for_url("**/home")
    expect(patient.get_by_role("heading", level=1)).to_have_text(f"Hello, {given}")
    phone_context.close()

    page.goto(f"/staff?q={INVITED_MRN}")
    page.get_by_role("link", name=re.compile(f"{family}, {given}")).click()
    expect(page.get_by_text("Uses the portal")).to_be_visible()


def test_a_poster_enrolls_a_match_and_files_a_non_match_without_saying_which(
    browser: Browser, page: Page, server: str, server_info: ServerInfo
) -> None:
    given, family, birth, phone = _record(server_info, POSTER_MRN)

    def scan_poster(birth_typed: date, who: str) -> Page:
        context = _new_phone(browser, server)
        visitor = context.new_page()
        _virtual_authenticator(context, visitor)
        visitor.goto("/join/MAIN")
        visitor.get_by_label("First name").fill(given)
        visitor.get_by_label("Last name").fill(who)
        visitor.get_by_label("Date of birth").fill(birth_typed.isoformat())
        visitor.get_by_label("Mobile phone or email").fill(phone)
        visitor.get_by_role("button", name="Send me a code").click()
        visitor.wait_for_url("**/sign-in/code/check?joining=1")
        return visitor

    matching = scan_poster(birth, family)
    stranger = scan_poster(date(1999, 9, 9), "Nobodyhere")
    answer = matching.locator("main").inner_text()
    assert stranger.locator("main").inner_text() == answer

    # Codes only: the worker may also text this person a visit reminder.
    texted = [text for text in received(browser, server, phone) if "sign-in code" in text]
    assert len(texted) == 1  # only the match was sent a code
    code = re.search(r"\b(\d{6})\b", texted[0]).group(1)  # type: ignore[union-attr]
    matching.get_by_role("textbox", name="Code").fill(code)
    matching.get_by_role("button", name="Sign in").click()
    matching.wait_for_url("**/welcome")
    matching.get_by_role("button", name="Make a passkey").click()
    matching.wait_for_url("**/home")
    expect(matching.get_by_role("heading", level=1)).to_have_text(f"Hello, {given}")
    matching.context.close()
    stranger.context.close()

    page.goto("/demo/staff/front-desk")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/staff")
    expect(page.get_by_text("1 person asked to join from a poster.")).to_be_visible()
    page.get_by_role("link", name="Join requests").first.click()
    expect(page.get_by_text(f"{given} Nobodyhere")).to_be_visible()
