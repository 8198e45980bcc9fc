"""Messages end to end, on a phone: a question with a photo is claimed by a nurse and
answered from a template, and the patient is told and reads it; a refill reaches the
prescriber and her decision reaches the patient; a caregiver's message shows for whom it was
written; and nobody else reaches a conversation or its attachment by its address."""

from __future__ import annotations

import io
import re
import secrets
import sqlite3
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.notices.messages import MESSAGE_REPLY, message_notice_url
from app.notices.words import say_in
from app.services.push import payload
from e2e.conftest import (
    PHONE,
    ServerInfo,
    click_the_notification,
    controlled_by_the_worker,
    push_until_shown,
    received,
    sign_in,
)
from e2e.test_accessibility import problems_on

CLINIC = "Riverside Family Health"
MARIA_PHONE = "+15550101001"


def _photo(folder: Path) -> Path:
    path = folder / "elbow.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (180, 60, 60)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def _staff(browser: Browser, server: str, slug: str) -> BrowserContext:
    clinic = browser.new_context(base_url=server, locale="en-US", **PHONE)
    clinic.set_default_timeout(15_000)
    desk = clinic.new_page()
    desk.goto(f"/demo/staff/{slug}")
    desk.get_by_role("button", name="Continue").click()
    desk.wait_for_url("**/staff")
    return clinic


def _write(page: Page, topic: str, subject: str, text: str) -> str:
    """From home, as a patient does: the button, the topic, the message; the thread's id."""
    page.goto("/home")
    page.get_by_role("link", name="Message my care team").click()
    page.get_by_role("link", name=topic).click()
    expect(page.get_by_text("In an emergency, call 911.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"You'll hear back by "))).to_be_visible()
    page.get_by_label("Subject (optional)").fill(subject)
    page.get_by_label("Your message").fill(text)
    return subject


def _sent(page: Page) -> str:
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/messages/(?!new\b)[\w-]+$"))
    expect(page.get_by_role("status").filter(has_text="Sent.")).to_be_visible()
    return page.url.split("/messages/", 1)[1].split("?", 1)[0]


def test_a_question_with_a_photo_is_claimed_answered_and_read(
    browser: Browser, context: BrowserContext, page: Page, server: str, tmp_path: Path
) -> None:
    sign_in(page, "maria")
    _write(page, "A question for my care team", "Rash on my elbow", "It itches. Worse?")
    page.get_by_label("Photos or a PDF (optional)").set_input_files(_photo(tmp_path))
    thread_id = _sent(page)
    photo = page.get_by_role("img", name="Photo: elbow.jpg")
    expect(photo).to_be_visible()
    assert photo.evaluate("image => image.naturalWidth") == 120
    assert problems_on(page) == []

    clinic = _staff(browser, server, "nurse")
    try:
        nurse = clinic.pages[0]
        nurse.get_by_role("link", name="Messages").first.click()
        nurse.get_by_role("link", name=re.compile("Rash on my elbow")).click()
        expect(nurse.get_by_text("It itches. Worse?")).to_be_visible()
        nurse.get_by_role("button", name="Claim").click()
        expect(nurse.get_by_role("status")).to_have_text("It is yours now.")
        nurse.get_by_label("Start from a template").select_option(
            label="Thanks, we have your message"
        )
        nurse.get_by_role("button", name="Use template").click()
        reply = nurse.get_by_label("Your reply")
        expect(reply).to_have_value(re.compile(r"^Hi Maria, thank you for your message\."))
        reply.fill(reply.input_value() + " A photo helps: it looks like contact dermatitis.")
        nurse.get_by_role("button", name="Send reply").click()
        expect(nurse.get_by_role("status")).to_contain_text("Reply sent.")
        assert problems_on(nurse) == []
    finally:
        clinic.close()

    # The notice says there is a message, from whom, and nothing of it. Maria has no device
    # subscribed here, so it came as a text; the push it would have been is shown below.
    texts = [text for text in received(browser, server, MARIA_PHONE) if "new message" in text]
    assert any(f"You have a new message from {CLINIC}." in text for text in texts)
    assert not any("dermatitis" in text or "elbow" in text for text in texts)

    context.grant_permissions(["notifications"], origin=server)
    cdp, registration = controlled_by_the_worker(page, context)
    page.goto("/home")
    # The push exactly as the server queues it for a device.
    words = MESSAGE_REPLY.words(say_in("en"), clinic=CLINIC)
    sent = payload(
        title=words.push_title,
        body=words.push_body,
        url=message_notice_url(thread_id),
        tag=f"message-{thread_id}",
    )
    push_until_shown(page, cdp, server, registration, sent)
    click_the_notification(context)
    page.wait_for_url(f"**/messages/{thread_id}")
    expect(page.get_by_text("it looks like contact dermatitis")).to_be_visible()


def test_a_refill_reaches_the_prescriber_and_her_approval_reaches_the_patient(
    browser: Browser, page: Page, server: str
) -> None:
    sign_in(page, "james")
    page.goto("/messages/new")
    page.get_by_role("link", name="Prescription refill").click()
    # His active medicines from the health record, one tap each.
    page.get_by_label("Metformin 1000 mg tablet").check()
    page.get_by_label("Pharmacy (name and street)").fill("Riverside Pharmacy, 200 River Street")
    thread_id = _sent(page)
    refills = page.get_by_role("region", name="Refills")
    expect(refills).to_contain_text("Metformin 1000 mg tablet")
    expect(refills).to_contain_text("Waiting for the prescriber")

    clinic = _staff(browser, server, "clinician")
    try:
        doctor = clinic.pages[0]
        doctor.goto("/staff/messages")
        doctor.get_by_role("link", name="Mine").click()
        doctor.locator(f"a[href='/staff/messages/{thread_id}']").click()
        expect(doctor.get_by_text("James Wilson").first).to_be_visible()
        doctor.get_by_label("Note for the patient (the reason, if not approved)").fill(
            "Approved: it will be ready at your pharmacy tomorrow."
        )
        doctor.get_by_role("button", name="Approve", exact=True).click()
        expect(doctor.get_by_role("status")).to_have_text("Decision sent to the patient.")
    finally:
        clinic.close()

    page.goto("/messages")
    expect(page.locator(f"a[href='/messages/{thread_id}'] .badge")).to_have_text("1")
    page.goto(f"/messages/{thread_id}")
    expect(page.get_by_role("region", name="Refills")).to_contain_text("Approved")
    expect(page.get_by_text("it will be ready at your pharmacy tomorrow")).to_be_visible()


def test_a_caregiver_s_message_shows_for_whom_it_was_written(
    browser: Browser, page: Page, server: str
) -> None:
    sign_in(page, "david")
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Walter, 82"
    ).click()
    expect(page.locator("#who")).to_contain_text("Walter Chen")
    _write(page, "A question for my care team", "Dad's new glasses", "Can he drive at night?")
    expect(page.get_by_text("You are writing for Walter.")).to_be_visible()
    thread_id = _sent(page)
    expect(page.get_by_text("David Chen, for Walter")).to_be_visible()

    clinic = _staff(browser, server, "nurse")
    try:
        nurse = clinic.pages[0]
        nurse.goto(f"/staff/messages/{thread_id}")
        expect(
            nurse.get_by_text("Written by David Chen (Son or daughter) for Walter Chen")
        ).to_be_visible()
    finally:
        clinic.close()


def test_nobody_else_opens_a_conversation_or_its_attachment_by_its_address(
    browser: Browser, page: Page, server: str, server_info: ServerInfo, tmp_path: Path
) -> None:
    sign_in(page, "maria")
    _write(page, "Something else", "School form", "The form is attached.")
    page.get_by_label("Photos or a PDF (optional)").set_input_files(_photo(tmp_path))
    thread_id = _sent(page)
    attachment = page.get_by_role("img", name="Photo: elbow.jpg").get_attribute("src")
    assert attachment is not None
    assert page.request.get(attachment).status == 200

    other = browser.new_context(base_url=server, locale="en-US", **PHONE)
    try:
        james = other.new_page()
        sign_in(james, "james")
        response = james.goto(f"/messages/{thread_id}")
        assert response is not None
        assert response.status == 404
        expect(james.get_by_role("heading", level=1)).to_have_text("We can't find that page")
        assert james.request.get(attachment).status == 404
    finally:
        other.close()

    # Lucas's private conversation, with a file: his mother, his guardian, reaches neither.
    with sqlite3.connect(server_info.database) as db:
        secret_id, conversation, message = db.execute(
            "SELECT c.public_id, c.id, m.id FROM conversation c"
            " JOIN patient p ON p.id = c.patient JOIN message m ON m.conversation = c.id"
            " WHERE p.mrn = 'RFH-100003' AND c.confidential = 1 LIMIT 1"
        ).fetchone()
        file_id = secrets.token_urlsafe(9)
        db.execute(
            "INSERT INTO message_attachment (public_id, message, conversation, media_type,"
            " filename, size_bytes, storage_key, sha256, created_at)"
            " VALUES (?, ?, ?, 'application/pdf', 'note.pdf', 10, ?, '', CURRENT_TIMESTAMP)",
            (file_id, message, conversation, secrets.token_hex(16)),
        )
    page.goto("/home")
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Lucas, 15"
    ).click()
    expect(page.locator("#who")).to_contain_text("Lucas Lopez")
    response = page.goto(f"/messages/{secret_id}")
    assert response is not None
    assert response.status == 404
    assert page.request.get(f"/messages/{secret_id}/attachments/{file_id}").status == 404
