"""A parent switches between family records in one tap each."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_a_parent_switches_records_in_one_tap_and_sees_only_what_rules_allow(
    signed_in: Page,
) -> None:
    page = signed_in
    switcher = page.get_by_role("navigation", name="Whose record")
    expect(switcher.get_by_role("button")).to_have_text(["Me", "Lucas, 15", "Emma, 7"])

    switcher.get_by_role("button", name="Emma, 7").click()
    expect(page.get_by_role("status")).to_have_text("You are looking at Emma's record.")
    expect(page.locator("#who")).to_contain_text("Emma Lopez")

    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Lucas, 15"
    ).click()
    expect(page.locator("#who")).to_contain_text("Lucas Lopez")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Results").click()
    page.wait_for_url("**/results")
    expect(page.get_by_text("Complete blood count (CBC)").first).to_be_visible()
    # Lucas's confidential test is his alone (docs/security.md: ages 12 to 17).
    expect(page.get_by_text("Chlamydia")).to_have_count(0)

    page.get_by_role("navigation", name="Whose record").get_by_role("button", name="Me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria")
    expect(page.get_by_text("You are looking at")).to_have_count(0)
