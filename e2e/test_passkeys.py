"""Passkeys with Chromium's virtual authenticator: add one, sign out, sign in with one tap."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect


def _virtual_authenticator(context: BrowserContext, page: Page) -> tuple[object, str]:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_add_a_passkey_then_sign_back_in_with_one_tap(
    context: BrowserContext, signed_in: Page
) -> None:
    page = signed_in
    cdp, authenticator = _virtual_authenticator(context, page)

    page.goto("/passkeys")
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    page.get_by_role("button", name="Add a passkey on this device").click()
    # Back on the list, which says so once (a notice, not the address).
    expect(page.get_by_role("status")).to_have_text(
        "Passkey added. Next time, sign in with one tap."
    )
    assert page.url.endswith("/passkeys")
    expect(page.get_by_role("button", name=re.compile(r"^Remove .*Chrome"))).to_have_count(1)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})  # type: ignore[attr-defined]
    assert len(stored["credentials"]) == 1
    assert stored["credentials"][0]["isResidentCredential"] is True

    page.goto("/more")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url("**/home")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria")


def test_a_sign_in_the_device_could_not_verify_is_refused_and_explained(
    context: BrowserContext, signed_in: Page
) -> None:
    page = signed_in
    cdp, authenticator = _virtual_authenticator(context, page)
    page.goto("/passkeys")
    page.get_by_role("button", name="Add a passkey on this device").click()
    expect(page.get_by_role("status")).to_have_text(
        "Passkey added. Next time, sign in with one tap."
    )
    page.goto("/more")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    # Touched, but no fingerprint, face or PIN: the device cannot say it was the person.
    cdp.send(  # type: ignore[attr-defined]
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
    )
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("check that it is you")
    assert "/home" not in page.url
