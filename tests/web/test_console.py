"""The clinic console: staff sign in with their own sessions, find patients, invite them,
and every look at a record is audited."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import httpx
from httpx import AsyncClient

from app.channels import DeliveryError, Outgoing
from app.channels.sms import ConsoleSMS
from app.clock import set_clock, utcnow
from app.db import write_transaction
from app.services.outbox import outbox_deliver, outbox_enqueue
from app.settings import Settings
from app.tables import AuditEvent, EnrollmentInvite, JoinRequest, OutboxMessage, Patient
from tests.factories import (
    grant,
    link_sent_to,
    make_location,
    make_patient,
    make_person,
    sent_to,
    staff_sign_up_path,
    unique,
    with_contacts,
    years_ago,
)
from tests.web.conftest import csrf_from, flashed, serving, sign_in, staff_signed_in

LEASE = timedelta(minutes=2)


def _meta_csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


async def patient_with_contacts(given: str = "Marisol") -> Patient:
    patient = await make_patient(given=given, birth=date(1984, 3, 14))
    mrn = f"RFH-{patient.id + 900000}"
    phone = f"+1555019{patient.id % 10000:04d}"
    await Patient.update(
        {Patient.mrn: mrn, Patient.phone: phone, Patient.email: f"{mrn.lower()}@mail.test"}
    ).where(Patient.id == patient.id)
    return await Patient.objects().where(Patient.id == patient.id).first()  # type: ignore[return-value]


async def test_the_console_asks_staff_to_sign_in_and_comes_back(client: AsyncClient) -> None:
    response = await client.get("/staff?q=garcia", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/sign-in?next=/staff%3Fq%3Dgarcia"
    page = await client.get("/staff/sign-in?next=/staff%3Fq%3Dgarcia")
    assert page.status_code == 200
    assert 'data-options-url="/staff/sign-in/options"' in page.text


async def test_a_patient_session_opens_nothing_in_the_console(client: AsyncClient) -> None:
    await sign_in(client, await make_person())
    response = await client.get("/staff", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/sign-in")


async def test_the_console_shows_phone_numbers_as_people_read_them(client: AsyncClient) -> None:
    """The record keeps E.164 ("+15550190042"), a run of digits the eye cannot check against
    what a patient says at the desk; the pages show "(555) 019-0042"."""
    await staff_signed_in(client)
    patient = await patient_with_contacts("Teodora")  # not Marisol: the search test counts those
    assert patient.phone is not None
    shown = f"(555) 019-{patient.phone[-4:]}"
    page = (await client.get(f"/staff/patients/{patient.public_id}")).text
    assert f"<dd>{shown}</dd>" in page
    assert patient.phone not in page

    family = unique("Caller")
    await JoinRequest.insert(
        JoinRequest(
            given_name="Kim",
            family_name=family,
            birth_date=date(2001, 2, 3),
            contact="+447911123456",
        )
    )
    listing = (await client.get("/staff/join-requests")).text
    assert "+44 7911 123456" in listing  # a number abroad keeps its country code
    assert "+447911123456" not in listing


async def test_a_staff_session_opens_no_patient_record(client: AsyncClient) -> None:
    await staff_signed_in(client)
    response = await client.get("/home", follow_redirects=False)
    assert response.status_code == 303  # the staff cookie is not a patient session


async def test_search_by_name_birth_date_or_mrn_finds_the_patient_and_is_audited(
    client: AsyncClient,
) -> None:
    staff = await staff_signed_in(client)
    patient = await patient_with_contacts()
    for query in (
        f"{patient.family_name[:6]} marisol",
        f"{patient.family_name} 3/14/1984",
        patient.mrn.lower(),
    ):
        response = await client.get("/staff", params={"q": query})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert f"/staff/patients/{patient.public_id}" in response.text, query
    missing = await client.get("/staff", params={"q": f"{patient.family_name} 1/1/1990"})
    assert f"/staff/patients/{patient.public_id}" not in missing.text
    assert "No patient matches" in missing.text
    searches = await AuditEvent.count().where(
        AuditEvent.actor_staff == staff.id, AuditEvent.action == "staff.patient_search"
    )
    assert searches == 4


async def test_htmx_search_answers_with_the_results_only(client: AsyncClient) -> None:
    await staff_signed_in(client)
    patient = await patient_with_contacts()
    response = await client.get(
        "/staff",
        params={"q": patient.mrn},
        headers={"HX-Request": "true", "HX-Target": "search-results"},
    )
    assert response.text.lstrip().startswith('<section id="search-results"')
    assert patient.mrn in response.text


async def test_opening_a_patient_is_audited_against_their_record(client: AsyncClient) -> None:
    staff = await staff_signed_in(client)
    patient = await patient_with_contacts()
    response = await client.get(f"/staff/patients/{patient.public_id}")
    assert response.status_code == 200
    assert patient.mrn in response.text
    assert "Not invited yet" in response.text
    assert await AuditEvent.exists().where(
        AuditEvent.actor_staff == staff.id,
        AuditEvent.patient == patient.id,
        AuditEvent.action == "staff.patient_view",
    )
    unknown = await client.get("/staff/patients/not-a-patient")
    assert unknown.status_code == 404


async def test_an_audit_search_reaches_the_access_history_of_each_patient_it_shows(
    client: AsyncClient,
) -> None:
    person = await make_person("Hal")
    await sign_in(client, person)
    await client.get("/home")  # an audit row on Hal's record
    client.cookies.clear()
    await staff_signed_in(client, role="admin")
    page = await client.get("/staff/audit", params={"action": "home."})
    assert page.status_code == 200
    assert person.patient.family_name in page.text  # name and MRN shown
    rows = await AuditEvent.count().where(
        AuditEvent.patient == person.patient.id, AuditEvent.action == "staff.audit_search"
    )
    assert rows == 1


async def test_an_invitation_by_text_goes_to_the_outbox_without_health_details(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client)
    patient = await patient_with_contacts()
    page = await client.get(f"/staff/patients/{patient.public_id}")
    sent = await client.post(
        f"/staff/patients/{patient.public_id}/invite",
        data={"via": "sms", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/staff/patients/{patient.public_id}"
    assert flashed(sent) == "patient_invited_by_sms"
    # The next page shows the notice once, with the number it went to.
    after = await client.get(sent.headers["location"])
    assert f"Invitation sent by text message to (555) 019-{patient.phone[-4:]}." in after.text
    assert "not joined yet" in after.text
    assert "Invitation sent" not in (await client.get(sent.headers["location"])).text
    assert patient.given_name not in await sent_to(patient.phone)
    assert (await client.get(await link_sent_to(patient.phone, "/enroll/"))).status_code == 200


async def test_a_qr_invitation_is_shown_once_and_replaces_the_text_link(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client, role="nurse")
    patient = await patient_with_contacts()
    token = csrf_from((await client.get(f"/staff/patients/{patient.public_id}")).text)
    url = f"/staff/patients/{patient.public_id}/invite"
    await client.post(url, data={"via": "sms", "_csrf_token": token})
    shown = await client.post(url, data={"via": "qr", "_csrf_token": token})
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert '<svg viewBox="' in shown.text
    assert 'class="qr"' in shown.text
    # The code is named for screen readers.
    assert "<title>A code that opens the invitation</title>" in shown.text
    qr_link = re.search(r"http://\S+(/enroll/[A-Za-z0-9_-]+)", shown.text)
    assert qr_link is not None
    assert (await client.get(qr_link.group(1))).status_code == 200
    old_link = await link_sent_to(patient.phone, "/enroll/")
    assert (await client.get(old_link)).status_code == 410
    assert await EnrollmentInvite.count().where(EnrollmentInvite.patient == patient.id) == 2


async def test_a_child_gets_no_invitation_of_their_own_and_staff_are_told_why(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client)
    child = await make_patient(given="Nina", birth=years_ago(7))
    await with_contacts(child, phone="+15550" + unique("")[-6:])
    page = await client.get(f"/staff/patients/{child.public_id}")
    assert "Show a QR code" not in page.text
    assert "Add a parent or guardian instead" in page.text
    for via in ("qr", "sms"):
        refused = await client.post(
            f"/staff/patients/{child.public_id}/invite",
            data={"via": via, "_csrf_token": csrf_from(page.text)},
        )
        assert refused.status_code == 400
        assert "Children under 12 cannot have their own portal account" in refused.text
    assert not await EnrollmentInvite.exists().where(EnrollmentInvite.patient == child.id)
    assert not await OutboxMessage.exists().where(OutboxMessage.recipient == child.phone)


async def test_a_teenager_is_invited_once_staff_mark_a_contact_as_their_own(
    client: AsyncClient,
) -> None:
    staff = await staff_signed_in(client)
    teen = await make_patient(given="Teo", birth=years_ago(15))
    await with_contacts(teen, phone="+15550" + unique("")[-6:], email=f"{unique('t')}@mail.test")
    url = f"/staff/patients/{teen.public_id}"
    page = await client.get(url)
    token = csrf_from(page.text)
    refused = await client.post(f"{url}/invite", data={"via": "qr", "_csrf_token": token})
    assert refused.status_code == 400
    assert "only through a phone or email that is their own" in refused.text
    assert not await EnrollmentInvite.exists().where(EnrollmentInvite.patient == teen.id)
    # The form: a real checkbox per contact, saved and audited.
    assert 'name="phone_is_own"' in page.text
    marked = await client.post(
        f"{url}/own-contacts",
        data={"phone_is_own": "yes", "_csrf_token": token},
        follow_redirects=False,
    )
    assert marked.status_code == 303
    row = await Patient.select(Patient.phone_is_own, Patient.email_is_own).where(
        Patient.id == teen.id
    )
    assert row == [{"phone_is_own": True, "email_is_own": False}]
    assert await AuditEvent.exists().where(
        AuditEvent.actor_staff == staff.id,
        AuditEvent.patient == teen.id,
        AuditEvent.action == "staff.own_contacts",
    )
    assert "own phone and email" in (await client.get(marked.headers["location"])).text
    by_email = await client.post(f"{url}/invite", data={"via": "email", "_csrf_token": token})
    assert by_email.status_code == 400
    sent = await client.post(
        f"{url}/invite", data={"via": "sms", "_csrf_token": token}, follow_redirects=False
    )
    assert sent.status_code == 303
    assert await OutboxMessage.exists().where(OutboxMessage.recipient == teen.phone)


async def test_a_parents_phone_cannot_be_marked_as_the_teenagers_own(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client)
    teen = await make_patient(given="Teo", birth=years_ago(15))
    phone = "+15550" + unique("")[-6:]
    await with_contacts(teen, phone=phone)
    parent = await make_person("Paula")
    await with_contacts(parent.patient, phone=phone)
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    url = f"/staff/patients/{teen.public_id}"
    token = csrf_from((await client.get(url)).text)
    refused = await client.post(
        f"{url}/own-contacts", data={"phone_is_own": "yes", "_csrf_token": token}
    )
    assert refused.status_code == 400
    assert "belongs to a parent or guardian with access" in refused.text
    row = await Patient.select(Patient.phone_is_own).where(Patient.id == teen.id)
    assert row == [{"phone_is_own": False}]


async def test_billing_staff_can_find_but_not_invite(client: AsyncClient) -> None:
    await staff_signed_in(client, role="billing")
    patient = await patient_with_contacts()
    page = await client.get(f"/staff/patients/{patient.public_id}")
    assert page.status_code == 200
    assert "Send by text message" not in page.text
    refused = await client.post(
        f"/staff/patients/{patient.public_id}/invite",
        data={"via": "sms", "_csrf_token": csrf_from(page.text)},
    )
    assert refused.status_code == 403
    assert not await OutboxMessage.exists().where(OutboxMessage.recipient == patient.phone)


async def test_staff_sessions_end_after_the_shorter_staff_idle_time(
    client: AsyncClient, settings: Settings
) -> None:
    await staff_signed_in(client)
    assert (await client.get("/staff")).status_code == 200
    later = utcnow() + timedelta(minutes=settings.staff_session_idle_minutes + 1)
    assert settings.staff_session_idle_minutes < settings.session_idle_minutes
    set_clock(lambda: later)
    response = await client.get("/staff", follow_redirects=False)
    assert response.status_code == 303


async def test_staff_sign_out_ends_the_session(client: AsyncClient) -> None:
    await staff_signed_in(client)
    page = await client.get("/staff")
    out = await client.post(
        "/staff/sign-out", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert out.headers["location"] == "/staff/sign-in"
    assert flashed(out) == "signed_out"
    assert "You are signed out." in (await client.get(out.headers["location"])).text
    assert (await client.get("/staff", follow_redirects=False)).status_code == 303


async def test_a_staff_link_opens_once_and_names_no_patient_account(
    client: AsyncClient, settings: Settings
) -> None:
    path = await staff_sign_up_path(settings.base_url)
    page = await client.get(path)
    assert page.status_code == 200
    assert "Welcome, Ada Admin" in page.text
    options = await client.post(
        f"{path}/options", headers={"X-CSRFToken": _meta_csrf(page.text)}, json={}
    )
    assert options.status_code == 200
    assert options.json()["authenticatorSelection"]["residentKey"] == "required"
    assert (await client.get("/staff/enroll/not-a-real-token")).status_code == 410


async def test_the_demo_outbox_is_for_the_demo_only(settings: Settings) -> None:
    async with serving(settings) as plain:
        await staff_signed_in(plain)
        assert (await plain.get("/staff/outbox")).status_code == 404
    async with serving(replace(settings, demo=True)) as demo:
        await staff_signed_in(demo)
        page = await demo.get("/staff/outbox")
        assert page.status_code == 200
        assert "Outbox" in page.text


async def test_demo_staff_sign_in_opens_the_console(demo_client: httpx.AsyncClient) -> None:
    confirm = await demo_client.get("/demo/staff/front-desk")
    # The demo clinic is not seeded in unit tests: the front desk persona is missing.
    response = await demo_client.post(
        "/demo/staff/front-desk",
        data={"_csrf_token": csrf_from(confirm.text)},
        follow_redirects=False,
    )
    assert response.status_code in (303, 404)


async def test_the_front_desk_prints_a_poster_for_a_location(client: AsyncClient) -> None:
    code = (await make_location()).code
    await staff_signed_in(client, role="front_desk")
    listing = await client.get("/staff/posters")
    assert listing.status_code == 200
    assert f"/staff/posters/{code}/a4" in listing.text
    assert "Print at 100% (actual size)" in listing.text
    poster = await client.get(f"/staff/posters/{code}/letter")
    assert poster.status_code == 200
    assert poster.headers["content-type"].startswith("image/svg+xml")
    assert 'width="215.9mm"' in poster.text
    assert f"/join/{code}" in poster.text
    assert (await client.get(f"/staff/posters/{code}/tabloid")).status_code == 404


async def test_billing_staff_print_no_posters(client: AsyncClient) -> None:
    await staff_signed_in(client, role="billing")
    assert (await client.get("/staff/posters")).status_code == 403


async def test_the_demo_outbox_shows_texts_as_received_though_the_table_drops_them(
    settings: Settings,
) -> None:
    phone, gone = "+15550188801", "+15550188802"
    await OutboxMessage.delete(force=True)  # this test's worker delivers texts only
    async with write_transaction():
        await outbox_enqueue(channel="sms", recipient=phone, body="Sign in: https://x.test/c/1")
    await outbox_deliver(channels={"sms": ConsoleSMS(reveal_body=True)}, worker="t", lease=LEASE)
    assert not await OutboxMessage.exists().where(OutboxMessage.body.like("%https://x.test%"))
    # The console adapter's copy stands in for the phone; a restarted demo has none.
    await OutboxMessage.insert(
        OutboxMessage(
            channel="sms",
            recipient=gone,
            body="",
            body_length=30,
            status="sent",
            scrubbed_at=utcnow(),
            idempotency_key=unique("k"),
            next_attempt_at=utcnow(),
        )
    )
    async with serving(replace(settings, demo=True)) as demo:
        await staff_signed_in(demo)
        page = await demo.get("/staff/outbox")
    assert page.status_code == 200
    assert "https://x.test/c/1" in page.text
    assert "(555) 018-8802" in page.text  # as people read it; the outbox keeps E.164
    assert "Sent. Its text is no longer kept." in page.text


async def test_a_message_that_gave_up_shows_its_text_is_gone_and_cannot_be_sent_again(
    client: httpx.AsyncClient,
) -> None:
    await OutboxMessage.delete(force=True)  # this test's worker delivers texts only
    async with write_transaction():
        await outbox_enqueue(channel="sms", recipient="+15550188803", body="Code 112233")
    refusing = _Refusing()
    await outbox_deliver(channels={"sms": refusing}, worker="t", lease=LEASE)
    dead = await OutboxMessage.objects().where(OutboxMessage.recipient == "+15550188803").first()
    assert dead is not None
    assert dead.status == "dead"
    await staff_signed_in(client, role="front_desk")
    page = await client.get("/staff/deliveries")
    assert page.status_code == 200
    assert "***8803" in page.text
    assert "cannot be sent again" in page.text
    assert f"/staff/deliveries/{dead.public_id}/retry" not in page.text
    retried = await client.post(
        f"/staff/deliveries/{dead.public_id}/retry", data={"_csrf_token": csrf_from(page.text)}
    )
    assert retried.status_code == 404
    row = await OutboxMessage.select(OutboxMessage.status).where(OutboxMessage.id == dead.id)
    assert row == [{"status": "dead"}]


class _Refusing:
    async def send(self, message: Outgoing) -> str:
        raise DeliveryError("twilio 400: invalid number", permanent=True)


async def test_odd_inbox_pages_and_audit_dates_get_an_answer_not_a_server_error(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client, role="admin")
    for page in ("9223372036854775807", "99999999999999999999999"):
        inbox = await client.get("/staff/results", params={"page": page})
        assert inbox.status_code in (200, 400), page
    last_day = await client.get("/staff/audit", params={"action": "x", "until": "9999-12-31"})
    assert last_day.status_code == 400
    assert "date" in last_day.text.lower()


async def test_input_a_database_cannot_store_is_refused_not_a_server_error(
    client: AsyncClient,
) -> None:
    token = csrf_from((await client.get("/sign-in/code")).text)
    nul = await client.post(
        "/sign-in/code", data={"contact": "vic\x00tim@mail.test", "_csrf_token": token}
    )
    assert nul.status_code < 500
    assert (await client.get("/join/ab%00c")).status_code < 500
    await staff_signed_in(client, role="front_desk")
    assert (await client.get("/staff", params={"q": "a\x00b"})).status_code < 500
