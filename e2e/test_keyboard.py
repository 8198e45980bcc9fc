"""The portal by keyboard alone: what Tab reaches shows where it is, nothing hidden takes the
focus, and after htmx swaps part of a page or the whole of it, the focus is where the person
left it or on what they must put right, never thrown back to the top of the page."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from e2e.conftest import sign_in

# The focused element as a screen reader and a sighted keyboard user meet it.
FOCUSED = """() => {
  const el = document.activeElement;
  const ring = (node) => {
    const style = getComputedStyle(node);
    return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  };
  // A switch hides its checkbox and rings the drawn switch beside it.
  const drawn = el.matches('.toggle input') ? el.nextElementSibling : el;
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    text: (el.getAttribute('aria-label') || el.innerText || el.name || '').trim().slice(0, 40),
    shown: drawn.checkVisibility({visibilityProperty: true, opacityProperty: true})
      && drawn.getBoundingClientRect().width > 0,
    hidden_from_readers: el.closest('[aria-hidden=true], [hidden], [inert]') !== null,
    ring: ring(drawn),
  };
}"""


def _tab_through(page: Page, limit: int = 60) -> list[dict[str, Any]]:
    """Tab from the top of the page until the focus leaves it."""
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["tag"] == "body" or (seen and focused == seen[0]):
            break
        seen.append(focused)
    return seen


def _scripts_ready(page: Page) -> None:
    # start.js adds portal.js, then htmx, after the first paint.
    page.wait_for_function("() => window.htmx !== undefined")


def test_every_stop_on_the_forms_shows_its_ring_and_nothing_hidden_takes_focus(
    signed_in: Page,
) -> None:
    page = signed_in
    page.set_viewport_size({"width": 1024, "height": 800})
    for path in ("/notifications", "/sharing", "/bills/pay", "/messages/new?topic=refill"):
        page.goto(path)
        stops = _tab_through(page)
        assert len(stops) > 5, path
        problems = [
            stop
            for stop in stops
            if not stop["ring"] or not stop["shown"] or stop["hidden_from_readers"]
        ]
        assert problems == [], f"{path}: {problems}"


def test_the_visits_switch_keeps_the_focus_on_the_link_pressed(signed_in: Page) -> None:
    page = signed_in
    page.goto("/visits")
    _scripts_ready(page)
    switch = page.get_by_role("navigation", name="Which visits")
    switch.get_by_role("link", name="Past").focus()
    with page.expect_response("**/visits?show=past"):
        page.keyboard.press("Enter")
    past = switch.get_by_role("link", name="Past")
    expect(past).to_have_attribute("aria-current", "true")
    expect(past).to_be_focused()  # not back at the top, before the skip link
    page.keyboard.press("Shift+Tab")
    expect(switch.get_by_role("link", name="Upcoming")).to_be_focused()
    with page.expect_response("**/visits"):
        page.keyboard.press("Enter")
    expect(switch.get_by_role("link", name="Upcoming")).to_have_attribute("aria-current", "true")
    expect(switch.get_by_role("link", name="Upcoming")).to_be_focused()


def test_a_link_swapped_in_is_htmx_s_at_once(signed_in: Page) -> None:
    """A key pressed the moment the visits switch is swapped in still stays on the page: the
    new links answer as htmx links in the very next task, not after a settle delay."""
    page = signed_in
    page.goto("/visits")
    _scripts_ready(page)
    handled_by_htmx = page.evaluate(
        """() => new Promise((resolve) => {
          document.body.addEventListener('htmx:afterSwap', () => setTimeout(() => {
            // Runs after the link's own listeners: htmx prevents the plain navigation.
            document.addEventListener('click', (event) => {
              resolve(event.defaultPrevented);
              event.preventDefault();
            }, {once: true});
            document.getElementById('show-upcoming').click();
          }), {once: true});
          document.getElementById('show-past').click();
        })"""
    )
    assert handled_by_htmx


def test_changing_where_keeps_the_focus_and_says_politely_what_it_found(page: Page) -> None:
    """The booking filters swap the times in through htmx: the focus stays on the choice
    just made, and one short line in a live region that stays in place says what came of it
    (a region swapped in whole is often not read at all); the times are not read out."""
    sign_in(page, "david")
    page.goto("/visits/new/sick_visit")
    _scripts_ready(page)
    status = page.locator("#times-status")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text(re.compile(r"^\d+ free times on \w+day, "))
    # What changes inside any live region from here on, as a screen reader would hear it.
    page.evaluate(
        """() => {
          window.spoken = [];
          document.getElementById('times-status').dataset.before = 'yes';
          new MutationObserver((changes) => changes.forEach((change) => {
            const node = change.target.nodeType === 1 ? change.target : change.target.parentElement;
            const region = node.closest('[aria-live], [role=status], [role=alert], [role=log]');
            if (region) window.spoken.push(region.id);
          })).observe(document.body, {childList: true, subtree: true, characterData: true});
        }"""
    )
    where = page.get_by_label("Where")
    where.focus()
    with page.expect_response(re.compile(r"/visits/new/sick_visit\?.*location=.+")):
        where.select_option(label="Riverside Main Clinic")
    expect(status).to_have_text(re.compile(r"^\d+ free times? on .+, at Riverside Main Clinic$"))
    expect(page.locator(".times-list a").first).to_contain_text("Riverside Main Clinic")
    expect(where).to_be_focused()
    assert page.evaluate("document.getElementById('times-status').dataset.before") == "yes"
    assert set(page.evaluate("window.spoken")) == {"times-status"}  # the line, not the list


def test_a_refused_form_puts_the_focus_on_the_field_to_put_right(signed_in: Page) -> None:
    page = signed_in
    page.goto("/messages/new?topic=question")
    _scripts_ready(page)
    page.get_by_role("button", name="Send").focus()
    page.keyboard.press("Enter")
    field = page.get_by_role("textbox", name="Your message")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(
        "Please write your message (up to 5,000 characters)."
    )
    expect(page.get_by_role("alert")).to_have_text(
        "Please write your message (up to 5,000 characters)."
    )


def test_a_sent_form_puts_the_focus_on_the_page_with_its_notice_first(signed_in: Page) -> None:
    page = signed_in
    page.goto("/notifications")
    _scripts_ready(page)
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press(" ")
    page.wait_for_url("**/notifications")
    expect(page.locator("main")).to_be_focused()
    expect(page.locator("main > :first-child")).to_have_attribute("role", "status")
    expect(page.get_by_role("status")).to_have_text("Saved.")


def test_on_a_phone_tab_never_hides_the_focus_under_the_bars(signed_in: Page) -> None:
    """The top bar sticks and the tab bar is fixed: the page scrolls what Tab reaches clear
    of both, forwards and back."""
    page = signed_in
    hidden = """() => {
      const el = document.activeElement;
      if (el.matches('.skip, body') || el.closest('.topbar, .tabbar')) return '';
      const box = el.getBoundingClientRect();
      const under = (bar) => {
        const edge = document.querySelector(bar).getBoundingClientRect();
        return box.bottom > edge.top + 1 && box.top < edge.bottom - 1;
      };
      return under('.tabbar') || under('.topbar') ? (el.innerText || el.id).slice(0, 30) : '';
    }"""
    for path in ("/home", "/record", "/notifications"):
        page.goto(path)
        covered = []
        for key in ["Tab"] * 30 + ["Shift+Tab"] * 30:
            page.keyboard.press(key)
            covered.append(page.evaluate(hidden))
        assert [name for name in covered if name] == [], path
