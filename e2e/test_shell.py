"""The installable shell in a phone-sized Chromium."""

from __future__ import annotations

import json
import sqlite3
import tempfile

from playwright.sync_api import BrowserContext, Page, Playwright, expect

from app.notices.results import RESULT_READY, result_notice_url
from app.notices.words import say_in
from app.services.push import payload
from e2e.conftest import (
    PHONE,
    ServerInfo,
    click_the_notification,
    controlled_by_the_worker,
    launch_options,
    push_until_shown,
    sign_in,
)


def test_signed_in_home_shows_whose_record_and_the_tabs(signed_in: Page) -> None:
    page = signed_in
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria")
    expect(page.locator("#who")).to_contain_text("Maria Lopez")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Home", "Messages", "Visits", "Results", "More"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(page.get_by_text("Next visit")).to_be_visible()


def test_tabs_navigate_with_htmx_without_a_full_reload(signed_in: Page) -> None:
    page = signed_in
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { window.__samePage = true }")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Results").click()
    page.wait_for_url("**/results")
    expect(page.get_by_role("heading", level=1)).to_have_text("Results")
    assert page.evaluate("() => window.__samePage === true"), "navigation reloaded the page"
    expect(page.get_by_role("link", name="Results")).to_have_attribute("aria-current", "page")


def test_visits_switch_swaps_only_the_list(signed_in: Page) -> None:
    page = signed_in
    page.goto("/visits")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { window.__samePage = true }")
    with page.expect_response("**/visits?show=past") as response:
        page.get_by_role("link", name="Past").click()
    assert response.value.request.headers.get("hx-target") == "visits"
    expect(page.get_by_role("region", name="Past visits")).to_be_visible()
    # The switch moved with the list: "Past" is now the selected one.
    expect(page.get_by_role("link", name="Past")).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("link", name="Upcoming")).not_to_have_attribute("aria-current", "true")
    assert page.evaluate("() => window.__samePage === true")
    assert page.url.endswith("/visits?show=past")


def test_tap_targets_are_at_least_44_px(signed_in: Page) -> None:
    page = signed_in
    small = page.evaluate(
        """() => [...document.querySelectorAll('nav a, button, .button, .row-link')]
            .filter(el => el.offsetParent !== null)
            .map(el => {
                const r = el.getBoundingClientRect();
                return [el.textContent.trim(), r.width, r.height];
            })
            .filter(([, w, h]) => w < 44 || h < 44)"""
    )
    assert small == []


def test_service_worker_registers_and_controls_the_page(signed_in: Page) -> None:
    page = signed_in
    script = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
    assert script.endswith("/sw.js?lang=en")  # the page tells the worker its language
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def test_offline_navigation_shows_the_offline_page(
    context: BrowserContext, signed_in: Page
) -> None:
    page = signed_in
    page.evaluate("() => navigator.serviceWorker.ready")
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    try:
        page.goto("/results")
        expect(page.get_by_role("heading", level=1)).to_have_text("You are offline")
        # The offline page never carries the patient's data.
        expect(page.locator("body")).not_to_contain_text("Maria")
    finally:
        context.set_offline(False)


def test_a_pushed_message_shows_a_notification_that_opens_its_screen(
    context: BrowserContext, signed_in: Page, server: str
) -> None:
    page = signed_in
    context.grant_permissions(["notifications"], origin=server)
    cdp, registration = controlled_by_the_worker(page, context)
    payload = {
        "title": "You have a new message",
        "body": "Open the portal to read it.",
        "url": "/messages",
        "tag": "msg-1",
    }
    shown = push_until_shown(page, cdp, server, registration, json.dumps(payload))
    assert shown == [
        ["You have a new message", "Open the portal to read it.", "msg-1", "/messages"]
    ]

    # A click on it takes the open portal window to the linked screen. A headless browser
    # cannot click a system notification, so the service worker gets the same event.
    click_the_notification(context)
    page.wait_for_url("**/messages")
    expect(page.get_by_role("heading", level=1)).to_have_text("Messages")


def test_a_result_notice_opens_that_report_through_the_service_worker(
    context: BrowserContext, signed_in: Page, server: str, server_info: ServerInfo
) -> None:
    page = signed_in
    with sqlite3.connect(server_info.database) as db:
        report_id, name = db.execute(
            "SELECT r.public_id, r.name FROM lab_report r JOIN patient p ON p.id = r.patient"
            " WHERE p.mrn = 'RFH-100001' AND r.released_at IS NOT NULL"
            " ORDER BY r.effective_at DESC LIMIT 1"
        ).fetchone()
    # The payload exactly as the server queues it when that result is released.
    words = RESULT_READY.words(say_in("en"))
    sent = payload(
        title=words.push_title,
        body=words.push_body,
        url=result_notice_url(report_id),
        tag=f"result-{report_id}",
    )
    assert name not in sent  # nothing about the test itself
    context.grant_permissions(["notifications"], origin=server)
    cdp, registration = controlled_by_the_worker(page, context)
    page.goto("/home")
    shown = push_until_shown(page, cdp, server, registration, sent)
    assert [[title, tag, url] for title, _, tag, url in shown] == [
        ["You have a new test result.", f"result-{report_id}", f"/results/{report_id}"]
    ]
    click_the_notification(context)
    page.wait_for_url(f"**/results/{report_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def test_the_portal_is_installable(playwright: Playwright, server: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, base_url=server, **PHONE, **launch_options()
        )
        try:
            page = context.new_page()
            page.goto("/")
            page.evaluate("() => navigator.serviceWorker.ready")
            errors = context.new_cdp_session(page).send("Page.getInstallabilityErrors")
            assert errors["installabilityErrors"] == []
            manifest = context.new_cdp_session(page).send("Page.getAppManifest")
            assert manifest["errors"] == []
        finally:
            context.close()


def test_the_shell_speaks_spanish_when_the_browser_does(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server, locale="es-ES", **PHONE)
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.locator("html")).to_have_attribute("lang", "es")
        sign_in_page = page
        sign_in_page.goto("/demo/sign-in/maria")
        sign_in_page.get_by_role("button", name="Continuar").click()
        sign_in_page.wait_for_url("**/home")
        expect(page.get_by_role("heading", level=1)).to_have_text("Hola, Maria")
        nav = page.get_by_role("navigation", name="Principal")
        for label in ("Inicio", "Mensajes", "Citas", "Resultados", "Más"):
            expect(nav.get_by_role("link", name=label)).to_be_visible()
    finally:
        context.close()


def test_an_unattended_screen_signs_out_after_the_idle_time(page: Page) -> None:
    page.clock.install()
    sign_in(page)
    page.goto("/results")
    # The idle timer is portal.js's; start.js adds it after the first paint, htmx after it.
    page.wait_for_function("() => window.htmx !== undefined")
    page.clock.fast_forward("15:01")
    # The sign-out said why, so the start page does; the address keeps only where to go back.
    page.wait_for_url("**/?next=%2Fresults")
    expect(page.get_by_role("status")).to_contain_text("you were signed out")
    page.goto("/home")
    page.wait_for_url("**/?next=/home")
