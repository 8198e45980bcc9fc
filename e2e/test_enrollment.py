"""From an enrollment link to a signed-in portal in three screens, with a passkey."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import date

from playwright.sync_api import Browser, BrowserContext, Page, expect

from e2e.conftest import ROOT, ServerInfo, received
from e2e.test_passkeys import _virtual_authenticator

MRN = "RFH-100150"


def _patient(server_info: ServerInfo) -> tuple[str, date]:
    with sqlite3.connect(server_info.database) as db:
        given, birth = db.execute(
            "SELECT given_name, birth_date FROM patient WHERE mrn = ?", (MRN,)
        ).fetchone()
    return given, date.fromisoformat(birth)


def test_a_printed_link_enrolls_the_patient_with_a_passkey_in_three_screens(
    context: BrowserContext, page: Page, server_info: ServerInfo
) -> None:
    given, birth = _patient(server_info)
    link = subprocess.run(
        [sys.executable, "-m", "app.cli", "invite", "--patient", MRN, "--via", "print"],
        cwd=ROOT,
        env=server_info.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cdp, authenticator = _virtual_authenticator(context, page)

    page.goto(link)  # screen 1: the date of birth
    page.get_by_label("Date of birth").fill(birth.isoformat())
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url("**/welcome")  # screen 2: a passkey for next time
    expect(page.get_by_role("heading", level=1)).to_have_text(f"You are in, {given}")
    page.get_by_role("button", name="Make a passkey").click()

    page.wait_for_url("**/home")  # screen 3: home
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {given}")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})  # type: ignore[attr-defined]
    assert len(stored["credentials"]) == 1

    # The new passkey is announced on the channels on file, in case it was not them.
    with sqlite3.connect(server_info.database) as db:
        announced = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'passkey_added'"
        ).fetchone()[0]
    assert announced >= 1

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")


def test_no_passkey_here_a_code_by_text_signs_in_and_offers_one(
    browser: Browser, context: BrowserContext, page: Page, server: str, server_info: ServerInfo
) -> None:
    cdp, authenticator = _virtual_authenticator(context, page)
    page.goto("/")
    page.get_by_role("link", name="Send me a code instead").click()
    page.get_by_label("Your mobile phone number").fill("(555) 010-1006")  # James Wilson's phone
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url("**/sign-in/code/check")
    body = next(
        text
        for text in received(browser, server, "+15550101006")
        if "Your portal sign-in code" in text
    )
    code = re.search(r"\b(\d{6})\b", body).group(1)  # type: ignore[union-attr]
    page.get_by_role("textbox", name="Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/welcome")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are in, James")
    expect(page.get_by_role("button", name="Make a passkey")).to_be_visible()

    # Recovery: after the code, a new passkey for this device, announced on the other channels.
    page.get_by_role("button", name="Make a passkey").click()
    page.wait_for_url("**/home")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})  # type: ignore[attr-defined]
    assert len(stored["credentials"]) == 1
    with sqlite3.connect(server_info.database) as db:
        announced = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '+15550101006'"
            " AND kind = 'passkey_added'"
        ).fetchone()[0]
    assert announced == 1
