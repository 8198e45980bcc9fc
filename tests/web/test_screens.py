"""What a person notices on a small phone: sentences that read apart, "you" on your own
record, pages that keep their frame, tap-to-call numbers, the right keyboard, a console
inbox that pages and filters, and a stylesheet the CSP allows without a request."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient

from app.clinic import DEFAULT_PROFILE, ClinicProfile
from app.settings import Settings
from app.tables import Conversation, LabReport, Message
from tests.factories import (
    grant,
    make_location,
    make_patient,
    make_person,
    make_report,
    years_ago,
)
from tests.web.conftest import csrf_from, serving, sign_in, staff_signed_in


async def _unread_message(patient_id: int) -> None:
    conversation = Conversation(patient=patient_id, subject="Your visit")
    await Conversation.insert(conversation)
    await Message.insert(Message(conversation=conversation.id, sender="clinic", body="Hello"))


async def test_family_news_reads_as_sentences_and_your_own_as_yours(
    client: AsyncClient,
) -> None:
    parent = await make_person("Maria")
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, child, kind="proxy", relationship="parent")
    await make_report(child)
    await _unread_message(child.id)
    await make_report(parent.patient)
    await sign_in(client, parent)

    home = (await client.get("/home")).text
    assert "Emma has 1 new result.</p>" in home
    assert "Emma has 1 new message.</p>" in home
    assert not re.search(r"new (result|message)s?\.[A-Za-z]", home)

    await sign_in(client, parent, acting_patient_id=child.id)
    emma = (await client.get("/home")).text
    assert "You have 1 new result." in emma
    assert "Open my record" in emma
    assert "Open Maria" not in emma
    assert "1 new message from Emma's care team" in emma


async def test_a_childs_care_team_note_is_the_childs(client: AsyncClient) -> None:
    parent = await make_person("Maria")
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, child, kind="proxy", relationship="parent")
    report = await make_report(child)
    await LabReport.update({LabReport.clinician_comment: "All fine."}).where(
        LabReport.id == report.id
    )
    await sign_in(client, parent, acting_patient_id=child.id)
    page = (await client.get(f"/results/{report.public_id}")).text
    assert "Note from Emma's care team:" in page
    assert "Note from your care team" not in page


async def test_a_page_outside_a_guardians_access_keeps_the_name_chips_and_tabs(
    client: AsyncClient,
) -> None:
    parent = await make_person("Maria")
    teen = await make_patient(given="Lucas", birth=years_ago(15))
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    await sign_in(client, parent, acting_patient_id=teen.id)
    response = await client.get("/messages")
    assert response.status_code == 403
    assert f"Lucas {teen.family_name}" in response.text
    assert 'aria-label="Whose record"' in response.text
    assert 'class="tabbar"' in response.text
    assert "Your access to Lucas's record does not include this page." in response.text
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("stored", "link"),
    [
        ("(555) 010-0100", '<a href="tel:5550100100">(555) 010-0100</a>'),
        # Kept in E.164, it still reads as people write it; the link dials the whole number.
        ("+15550100100", '<a href="tel:+15550100100">(555) 010-0100</a>'),
    ],
)
async def test_the_clinic_phone_is_a_tap_to_call_link(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, stored: str, link: str
) -> None:
    async def with_phone() -> ClinicProfile:
        return replace(DEFAULT_PROFILE, name="Riverside", phone=stored)

    monkeypatch.setattr("app.main.clinic_profile_load", with_phone)
    async with serving(settings) as client:
        for path in ["/", "/offline"]:
            page = (await client.get(path)).text
            assert link in page, path


async def test_the_code_request_offers_the_keyboard_that_fits_and_a_way_back(
    client: AsyncClient,
) -> None:
    by_phone = (await client.get("/sign-in/code")).text
    assert 'inputmode="tel"' in by_phone
    assert 'href="/sign-in/code?by=email"' in by_phone
    assert 'class="back-link" href="/"' in by_phone
    by_email = (await client.get("/sign-in/code?by=email")).text
    assert 'inputmode="email"' in by_email
    assert 'action="/sign-in/code?by=email"' in by_email


async def test_the_join_form_asks_for_one_valid_autocomplete_token(client: AsyncClient) -> None:
    page = (await client.get(f"/join/{(await make_location()).code}")).text
    tokens = re.findall(r'id="contact"[^>]*autocomplete="([^"]+)"', page)
    assert tokens == ["tel"]


async def test_the_language_form_loads_a_whole_new_page(client: AsyncClient) -> None:
    page = (await client.get("/")).text
    form = re.search(r'<form method="post" action="/language"[^>]*>', page)
    assert form is not None
    assert 'hx-boost="false"' in form.group(0)


async def test_the_stylesheet_is_inline_and_allowed_by_its_hash(client: AsyncClient) -> None:
    response = await client.get("/")
    assert 'rel="stylesheet"' not in response.text
    style = re.search(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert style is not None
    assert ".tabbar" in style.group(1)
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    csp = response.headers["content-security-policy"]
    assert f"style-src 'self' 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp


async def test_no_script_is_fetched_before_the_page_is_on_screen(client: AsyncClient) -> None:
    response = await client.get("/")
    assert "<script src=" not in response.text
    scripts = re.findall(r'<script data-scripts="([^"]+)">(.*?)</script>', response.text, re.DOTALL)
    assert len(scripts) == 1
    assert response.text.count("<script") == 1
    urls, source = scripts[0]
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    csp = response.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    # start.js adds these after the first paint: ours first, htmx last, each one served;
    # the passkey and push scripts only where the page has what they work on.
    entries = [entry.partition("@") for entry in urls.split(" ")]
    names = {path.split("?")[0].rsplit("/", 1)[1]: when for path, _, when in entries}
    assert list(names) == ["portal.js", "passkeys.js", "push.js", "htmx.min.js"]
    assert names["passkeys.js"] == "[data-passkey],[data-passkey-autofill]"
    assert names["push.js"] == "[data-push-subscribe]"
    assert names["portal.js"] == names["htmx.min.js"] == ""
    assert "data-passkey" in response.text  # the start page does call for passkeys.js
    for path, _, _ in entries:
        assert (await client.get(path)).status_code == 200


async def test_the_more_tab_says_what_is_behind_it(client: AsyncClient) -> None:
    await sign_in(client, await make_person())
    home = (await client.get("/home")).text
    assert re.search(r'href="/more"[^>]*>.*More<span class="visually-hidden">: settings', home)


async def _inbox_reports(count: int, *, held: bool, name: str = "Panel") -> None:
    patient = await make_patient(given="Inbox")
    for index in range(count):
        report = await make_report(patient, name=f"{name} {index}", released=not held)
        if held:
            await LabReport.update(
                {LabReport.hold_until: datetime.now(UTC) + timedelta(hours=index + 1)}
            ).where(LabReport.id == report.id)


async def test_the_results_inbox_pages_and_filters(client: AsyncClient) -> None:
    await _inbox_reports(3, held=True)
    await _inbox_reports(20, held=False)
    await staff_signed_in(client, role="clinician")

    held = (await client.get("/staff/results?show=held")).text
    assert held.count("Held until") >= 3
    assert "Patient can see it since" not in held

    no_note = (await client.get("/staff/results?show=no_note")).text
    assert "Held until" not in no_note
    assert no_note.count("Patient can see it since") == 15
    assert 'href="/staff/results?show=no_note&amp;page=2"' in no_note

    second = (await client.get("/staff/results?show=no_note&page=2")).text
    assert "Page 2" in second
    assert 'href="/staff/results?show=no_note&amp;page=1"' in second

    # A note written on page 2 brings the reader back to page 2.
    public_id = re.search(r'action="/staff/results/([^?"]+)\?show=no_note', second)
    assert public_id is not None
    saved = await client.post(
        f"/staff/results/{public_id.group(1)}?show=no_note&page=2",
        data={"comment": "Looks good.", "_csrf_token": csrf_from(second)},
        follow_redirects=False,
    )
    assert saved.headers["location"] == "/staff/results?show=no_note&page=2"
    assert (await client.get("/staff/results?show=nonsense")).status_code == 200


async def test_the_results_inbox_names_tests_in_the_readers_language(
    client: AsyncClient,
) -> None:
    await _inbox_reports(1, held=True, name="Basic metabolic panel")
    await staff_signed_in(client, role="clinician")
    client.cookies.set("portal_lang", "es")
    page = (await client.get("/staff/results?show=held")).text
    assert "Panel metabólico básico (BMP)" in page
    assert "Basic metabolic panel" not in page
