"""Messages over HTTP, as a phone without JavaScript uses them: one tap from home to write,
a photo sent in the same request, a refused form that keeps what was typed, attachments
served only through the patient context, and the clinic's queue on the other side."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient, Response

from app.tables import Conversation, Message, MessageAttachment, Patient
from tests.factories import (
    EXECUTABLE,
    PDF_BYTES,
    Person,
    grant,
    make_account,
    make_person,
    make_thread,
    photo_with_location,
    years_ago,
)
from tests.web.conftest import csrf_from, flashed, sign_in, staff_signed_in


async def _send(
    client: AsyncClient, fields: dict[str, str], files: list[tuple[str, bytes, str]] | None = None
) -> Response:
    token = csrf_from((await client.get("/messages/new?topic=question")).text)
    return await client.post(
        "/messages",
        data={"_csrf_token": token, **fields},
        files=[("files", file) for file in files or []] or None,
        follow_redirects=False,
    )


def _thread_id(location: str) -> str:
    found = re.fullmatch(r"/messages/([\w-]+)", location)  # no notice in the address
    assert found, location
    return found.group(1)


async def test_message_my_care_team_is_one_tap_from_home(client: AsyncClient) -> None:
    person = await make_person("Hana")
    await sign_in(client, person)
    home = await client.get("/home")
    assert '<a class="button block" href="/messages/new">Message my care team</a>' in home.text
    topics = await client.get("/messages/new")
    assert topics.status_code == 200
    assert "In an emergency, call 911." in topics.text
    for topic in ("question", "refill", "appointment", "billing", "other"):
        assert f'href="/messages/new?topic={topic}"' in topics.text
    form = await client.get("/messages/new?topic=question")
    assert "In an emergency, call 911." in form.text
    assert re.search(r"You'll hear back by (today|tomorrow|\w+day, )", form.text)
    assert 'enctype="multipart/form-data"' in form.text
    assert form.headers["cache-control"] == "no-store"


async def test_a_question_with_a_photo_is_sent_in_one_request(client: AsyncClient) -> None:
    person = await make_person("Pia")
    await sign_in(client, person)
    sent = await _send(
        client,
        {"topic": "question", "subject": "My rash", "body": "Is this getting worse?"},
        [("rash.jpg", photo_with_location(), "image/jpeg")],
    )
    assert sent.status_code == 303
    assert flashed(sent) == "message_sent"
    thread_id = _thread_id(sent.headers["location"])
    page = await client.get(f"/messages/{thread_id}")
    assert '<p id="notice" class="notice" role="status">Sent.</p>' in page.text
    assert "Is this getting worse?" in page.text
    photo = re.search(rf'<img src="(/messages/{thread_id}/attachments/[\w-]+)"', page.text)
    assert photo
    served = await client.get(photo.group(1))
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["content-disposition"] == 'inline; filename="rash.jpg"'
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "no-store"
    assert "sandbox" in served.headers["content-security-policy"]
    assert served.content.startswith(b"\xff\xd8\xff")


async def test_a_patient_s_message_kept_without_an_author_says_who_wrote_it(
    client: AsyncClient,
) -> None:
    """Older and imported messages keep no author: the patient wrote them, and a screen reader
    should not hear a date with nobody before it."""
    person = await make_person("Pia")
    await sign_in(client, person)
    sent = await _send(client, {"topic": "question", "body": "An old question"})
    thread_id = _thread_id(sent.headers["location"])
    await Message.update({Message.author_name: "", Message.author_account: None}).where(
        Message.body == "An old question"
    )
    page = (await client.get(f"/messages/{thread_id}")).text
    assert re.search(r'<p class="small muted">Pia · ', page)
    assert '<p class="small muted"> · ' not in page


async def test_a_pdf_only_downloads(client: AsyncClient) -> None:
    person = await make_person("Ugo")
    await sign_in(client, person)
    sent = await _send(
        client,
        {"topic": "other", "body": "The form from school."},
        [("form.pdf", PDF_BYTES, "application/pdf")],
    )
    thread_id = _thread_id(sent.headers["location"])
    row = (
        await MessageAttachment.objects()
        .where(MessageAttachment.conversation.public_id == thread_id)
        .first()
    )
    assert row is not None
    served = await client.get(f"/messages/{thread_id}/attachments/{row.public_id}")
    assert served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"] == 'attachment; filename="form.pdf"'
    assert served.content == PDF_BYTES


async def test_a_refused_form_comes_back_with_the_text_as_typed(client: AsyncClient) -> None:
    person = await make_person("Dora")
    await sign_in(client, person)
    renamed = await _send(
        client,
        {"topic": "question", "subject": "Lab form", "body": "Here is the form, thank you!"},
        [("lab-form.jpg", EXECUTABLE, "image/jpeg")],
    )
    assert renamed.status_code == 400
    text = renamed.text
    assert "We can take photos (JPEG or PNG) and PDF files only." in text
    assert "Here is the form, thank you!" in text
    assert 'value="Lab form"' in text
    assert "Please choose your files again." in text
    # A screen reader on the file field hears what is wrong with it, then the hint.
    assert re.search(
        r'<input class="field" type="file" id="files"[^>]*aria-invalid="true"'
        r' aria-describedby="form-error files-hint"',
        text,
    )
    too_big = await _send(
        client,
        {"topic": "question", "body": "A big photo"},
        [("big.jpg", b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024 + 1), "image/jpeg")],
    )
    assert too_big.status_code == 400
    assert "That file is too large. Each file can be up to 10 MB." in too_big.text
    assert "A big photo" in too_big.text
    empty = await _send(client, {"topic": "question", "subject": "Kept", "body": "  "})
    assert empty.status_code == 400
    assert "Please write your message" in empty.text
    assert not await Conversation.exists().where(Conversation.patient == person.patient.id)


async def test_another_patient_gets_404_for_a_thread_and_its_attachment(
    client: AsyncClient,
) -> None:
    owner = await make_person("Owen")
    await sign_in(client, owner)
    sent = await _send(
        client, {"topic": "question", "body": "Mine."}, [("a.pdf", PDF_BYTES, "application/pdf")]
    )
    thread_id = _thread_id(sent.headers["location"])
    row = (
        await MessageAttachment.objects()
        .where(MessageAttachment.conversation.public_id == thread_id)
        .first()
    )
    assert row is not None
    stranger = await make_person("Stan")
    await sign_in(client, stranger)
    assert (await client.get(f"/messages/{thread_id}")).status_code == 404
    attachment = await client.get(f"/messages/{thread_id}/attachments/{row.public_id}")
    assert attachment.status_code == 404
    token = csrf_from((await client.get("/messages/new?topic=other")).text)
    reply = await client.post(f"/messages/{thread_id}", data={"body": "Hi", "_csrf_token": token})
    assert reply.status_code == 404


async def test_a_guardian_gets_404_for_a_teenager_s_confidential_thread(
    client: AsyncClient,
) -> None:
    teen = await make_person("Leo", birth=years_ago(15))
    parent = await make_account("Mara Parent")
    await grant(parent, teen.patient, kind="proxy", scope="full", relationship="parent")
    await sign_in(client, teen)
    sent = await _send(
        client,
        {"topic": "question", "body": "Just between us."},
        [("note.pdf", PDF_BYTES, "application/pdf")],
    )
    thread_id = _thread_id(sent.headers["location"])
    row = (
        await MessageAttachment.objects()
        .where(MessageAttachment.conversation.public_id == thread_id)
        .first()
    )
    assert row is not None
    page = await client.get(f"/messages/{thread_id}")
    assert "Private" in page.text
    await sign_in(client, Person(account=parent, patient=teen.patient), teen.patient.id)
    assert (await client.get(f"/messages/{thread_id}")).status_code == 404
    attachment = await client.get(f"/messages/{thread_id}/attachments/{row.public_id}")
    assert attachment.status_code == 404
    assert (await client.get("/messages")).status_code == 403


async def test_a_caregiver_s_message_shows_who_wrote_it_for_whom(client: AsyncClient) -> None:
    walter = await make_person("Walter", birth=years_ago(82))
    david = await make_account("David Chen")
    await grant(david, walter.patient, kind="proxy", scope="full", relationship="child")
    await sign_in(client, Person(account=david, patient=walter.patient), walter.patient.id)
    form = await client.get("/messages/new?topic=question")
    assert "You are writing for Walter. The care team will see that you wrote it." in form.text
    assert 'name="private"' not in form.text
    sent = await _send(client, {"topic": "question", "body": "Dad is dizzy."})
    thread_id = _thread_id(sent.headers["location"])
    page = await client.get(f"/messages/{thread_id}")
    assert "David Chen, for Walter" in page.text
    await staff_signed_in(client, role="nurse")
    clinic = await client.get(f"/staff/messages/{thread_id}")
    assert clinic.status_code == 200
    assert (
        f"Written by David Chen (Son or daughter) for Walter {walter.patient.family_name}"
        in clinic.text
    )


async def test_the_second_claim_is_told_who_has_it(client: AsyncClient) -> None:
    person = await make_person("Quin")
    thread = await make_thread(person.patient)
    first = await staff_signed_in(client, role="nurse")
    page = await client.get(f"/staff/messages/{thread.public_id}")
    token = csrf_from(page.text)
    claimed = await client.post(
        f"/staff/messages/{thread.public_id}/claim",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert claimed.status_code == 303
    await staff_signed_in(client, role="clinician")
    late = await client.post(
        f"/staff/messages/{thread.public_id}/claim", data={"_csrf_token": token}
    )
    assert late.status_code == 409
    assert f"{first.given_name} {first.family_name} has already claimed this conversation." in (
        late.text
    )


async def test_a_reply_from_a_template_reaches_the_patient(client: AsyncClient) -> None:
    person = await make_person("Tess")
    await Patient.update({Patient.preferred_name: "Tessa"}).where(Patient.id == person.patient.id)
    await sign_in(client, person)
    sent = await _send(client, {"topic": "question", "body": "Can I exercise?"})
    thread_id = _thread_id(sent.headers["location"])
    admin = await staff_signed_in(client, role="admin")
    templates = await client.get("/staff/messages/templates")
    saved = await client.post(
        "/staff/messages/templates",
        data={
            "title": f"Exercise {admin.id}",
            "body": "Hi {first_name}, yes: walking is fine.",
            "topic": "question",
            "_csrf_token": csrf_from(templates.text),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    await staff_signed_in(client, role="nurse")
    page = await client.get(f"/staff/messages/{thread_id}")
    choice = re.search(rf'<option value="([\w-]+)">Exercise {admin.id}</option>', page.text)
    assert choice
    filled = await client.get(f"/staff/messages/{thread_id}?template={choice.group(1)}")
    assert "Hi Tessa, yes: walking is fine.</textarea>" in filled.text
    replied = await client.post(
        f"/staff/messages/{thread_id}/reply",
        data={"body": "Hi Tessa, yes: walking is fine.", "_csrf_token": csrf_from(filled.text)},
        follow_redirects=False,
    )
    assert replied.status_code == 303
    home = await client.get("/home")
    assert "1 new message from your care team" in home.text
    thread = await client.get(f"/messages/{thread_id}")
    assert "Hi Tessa, yes: walking is fine." in thread.text
    assert "1 new message" not in (await client.get("/home")).text


async def test_the_queue_shows_what_is_waiting_in_the_roles_pools(client: AsyncClient) -> None:
    person = await make_person("Vera")
    question = await make_thread(person.patient)
    bill = await make_thread(person.patient, topic="billing", pool="billing")
    # Overdue, so it is listed first whatever the run's other tests left waiting in the pool
    # (the queue shows the 200 soonest due).
    await Conversation.update({Conversation.due_at: datetime.now(UTC) - timedelta(days=1)}).where(
        Conversation.id == question.id
    )
    await staff_signed_in(client, role="nurse")
    queue = await client.get("/staff/messages")
    assert f"/staff/messages/{question.public_id}" in queue.text
    assert f"/staff/messages/{bill.public_id}" not in queue.text
    assert (await client.get(f"/staff/messages/{bill.public_id}")).status_code == 403
    for view in ("mine", "morning", "evening"):
        assert (await client.get(f"/staff/messages?view={view}")).status_code == 200


async def test_the_message_pages_speak_spanish(client: AsyncClient) -> None:
    person = await make_person("Sofia")
    await sign_in(client, person)
    client.headers["accept-language"] = "es"
    try:
        form = await client.get("/messages/new?topic=refill")
        assert "En una emergencia, llame al 911." in form.text
        assert "Farmacia" in form.text
    finally:
        del client.headers["accept-language"]
