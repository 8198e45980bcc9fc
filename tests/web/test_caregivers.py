"""Caregivers: an adult invites one with a scope, the caregiver accepts without a password
and sees exactly that scope, revoking takes effect on the next request, staff invite a
minor's guardian, and a guardian's access ends at 18 with both told."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from httpx import AsyncClient

from app.handlers.support import SESSION_COOKIE
from app.services.caregivers import guardian_grants_end_at_adulthood
from app.services.clock import set_clock, utcnow
from app.services.sessions import session_start
from app.tables import (
    AccessGrant,
    Account,
    Appointment,
    AuditEvent,
    Clinician,
    Conversation,
    OutboxMessage,
    Patient,
)
from tests.factories import (
    grant,
    make_account,
    make_clinician,
    make_patient,
    make_person,
    make_report,
    unique,
    years_ago,
)
from tests.web.conftest import csrf_from, serving, sign_in, staff_signed_in


async def _invite(client: AsyncClient, contact: str, scope: str, end_date: str = "") -> str:
    page = await client.get("/sharing")
    assert page.status_code == 200
    sent = await client.post(
        "/sharing/invite",
        data={
            "contact": contact,
            "relationship": "spouse",
            "scope": scope,
            "end_date": end_date,
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert sent.headers["location"] == "/sharing?done=invited"
    body = (
        await OutboxMessage.select(OutboxMessage.body)
        .where(OutboxMessage.recipient == contact)
        .order_by(OutboxMessage.id, ascending=False)
        .first()
    )
    assert body is not None
    link = re.search(r"(/care/[A-Za-z0-9_-]+)", body["body"])
    assert link is not None
    return link.group(1)


async def _accept_as_new_person(client: AsyncClient, link: str, name: str) -> None:
    client.cookies.clear()
    page = await client.get(link)
    assert page.status_code == 200
    accepted = await client.post(
        link, data={"name": name, "_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert accepted.headers["location"] == "/welcome"


async def test_a_caregiver_with_appointments_and_bills_sees_exactly_that_until_revoked(
    settings: object,
) -> None:
    from app.settings import get_settings

    patient = await make_person("Rosa")
    clinician = await make_clinician()
    location = (
        await Clinician.select(Clinician.location.as_alias("id"))
        .where(Clinician.id == clinician)
        .first()
    )
    if location is not None:
        await Appointment.insert(
            Appointment(
                patient=patient.patient.id,
                clinician=clinician,
                location=location["id"],
                starts_at=utcnow() + timedelta(days=3),
                ends_at=utcnow() + timedelta(days=3, minutes=30),
                visit_type="follow_up",
            )
        )
    contact = f"{unique('carer')}@mail.test"
    async with serving(get_settings()) as rosa:
        await sign_in(rosa, patient)
        link = await _invite(rosa, contact, "appointments_billing")
        message = await OutboxMessage.select(OutboxMessage.body).where(
            OutboxMessage.recipient == contact
        )
        assert "Rosa" not in message[0]["body"]  # no names, nothing about health
        async with serving(get_settings()) as carer:
            await _accept_as_new_person(carer, link, "Sam Carer")
            welcome = await carer.get("/welcome")
            assert "You are in, Sam" in welcome.text
            assert (await carer.get("/visits")).status_code == 200
            assert (await carer.get("/results")).status_code == 403
            assert (await carer.get("/messages")).status_code == 403
            assert (await carer.get("/sharing")).status_code == 403  # only the patient manages
            assert (await carer.get(link)).status_code == 410  # the link worked once

            listing = await rosa.get("/sharing")
            assert "Sam Carer" in listing.text
            assert "Appointments and bills" in listing.text
            grant_id = re.search(r"/sharing/grants/([^/]+)/revoke", listing.text)
            assert grant_id is not None
            await rosa.post(
                f"/sharing/grants/{grant_id.group(1)}/revoke",
                data={"_csrf_token": csrf_from(listing.text)},
            )
            # Revoked: the caregiver's very next request no longer reaches the record.
            assert (await carer.get("/visits", follow_redirects=False)).status_code == 403
        history = await rosa.get("/access-history")
        assert "Sam Carer" in history.text
        assert "Caregiver" in history.text


async def test_an_end_date_ends_the_caregiver_s_access(client: AsyncClient) -> None:
    patient = await make_person()
    await sign_in(client, patient)
    contact = f"{unique('c')}@mail.test"
    link = await _invite(
        client, contact, "full", end_date=(date.today() + timedelta(days=3)).isoformat()
    )
    await _accept_as_new_person(client, link, "Temp Helper")
    assert (await client.get("/home")).status_code == 200
    later = utcnow() + timedelta(days=5)
    set_clock(lambda: later)
    # A fresh session on the later day (the old one has long gone idle): no record left.
    helper = await Account.select(Account.id).where(Account.display_name == "Temp Helper").first()
    assert helper is not None
    token = await session_start(
        account_id=helper["id"],
        acting_patient_id=None,
        lifetime=timedelta(hours=1),
        ip="127.0.0.1",
        user_agent="pytest",
        reason="test",
    )
    client.cookies.set(SESSION_COOKIE, token)
    assert (await client.get("/home", follow_redirects=False)).status_code == 403


async def test_invitations_are_checked_and_can_be_cancelled(client: AsyncClient) -> None:
    teen = await make_person("Teen", birth=years_ago(15))
    await sign_in(client, teen)
    page = await client.get("/sharing")
    refused = await client.post(
        "/sharing/invite",
        data={
            "contact": "a@b.org",
            "relationship": "friend",
            "scope": "full",
            "_csrf_token": csrf_from(page.text),
        },
    )
    assert refused.status_code == 400
    assert "Only adults can invite" in refused.text

    adult = await make_person()
    await sign_in(client, adult)
    page = await client.get("/sharing")
    token = csrf_from(page.text)
    for contact, scope, end in (
        ("nonsense", "full", ""),
        ("a@b.org", "everything", ""),
        ("a@b.org", "full", "2001-01-01"),
    ):
        bad = await client.post(
            "/sharing/invite",
            data={
                "contact": contact,
                "relationship": "friend",
                "scope": scope,
                "end_date": end,
                "_csrf_token": token,
            },
        )
        assert bad.status_code == 400
    contact = f"{unique('x')}@mail.test"
    first = await _invite(client, contact, "billing")
    second = await _invite(client, contact, "billing")
    assert (await client.get(first)).status_code == 410  # a new invitation voids the old one
    listing = await client.get("/sharing")
    invite_id = re.search(r"/sharing/invites/([^/]+)/cancel", listing.text)
    assert invite_id is not None
    await client.post(
        f"/sharing/invites/{invite_id.group(1)}/cancel",
        data={"_csrf_token": csrf_from(listing.text)},
    )
    assert (await client.get(second)).status_code == 410


async def test_a_caregiver_with_no_record_signs_in_with_a_code(client: AsyncClient) -> None:
    patient = await make_person()
    await sign_in(client, patient)
    phone = f"+1555017{unique('')[-4:]}"
    link = await _invite(client, phone, "full")
    await _accept_as_new_person(client, link, "Phone Person")
    client.cookies.clear()
    form = await client.get("/sign-in/code")
    await client.post("/sign-in/code", data={"contact": phone, "_csrf_token": csrf_from(form.text)})
    texts = await OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == phone)
    code = next(
        (
            match.group(1)
            for row in texts
            if (match := re.search(r"sign-in code is (\d{6})", row["body"]))
        ),
        None,
    )
    assert code is not None
    check = await client.get("/sign-in/code/check")
    done = await client.post(
        "/sign-in/code/check",
        data={"code": code, "_csrf_token": csrf_from(check.text)},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/welcome"
    assert (await client.get("/home")).status_code == 200


async def test_staff_invite_a_minor_s_guardian_after_checking(client: AsyncClient) -> None:
    child = await make_patient(given="Kid", birth=years_ago(7))
    adult = await make_patient(given="Grown")
    await staff_signed_in(client, role="front_desk")
    page = await client.get(f"/staff/patients/{child.public_id}")
    assert "Add a parent or guardian" in page.text
    token = csrf_from(page.text)
    contact = f"{unique('mom')}@mail.test"
    unchecked = await client.post(
        f"/staff/patients/{child.public_id}/guardian",
        data={"contact": contact, "relationship": "parent", "_csrf_token": token},
    )
    assert unchecked.status_code == 400
    sent = await client.post(
        f"/staff/patients/{child.public_id}/guardian",
        data={"contact": contact, "relationship": "parent", "checked": "yes", "_csrf_token": token},
        follow_redirects=False,
    )
    assert sent.headers["location"] == f"/staff/patients/{child.public_id}?sent=guardian"
    assert await OutboxMessage.exists().where(OutboxMessage.recipient == contact)
    adult_page = await client.get(f"/staff/patients/{adult.public_id}")
    assert "Add a parent or guardian" not in adult_page.text
    refused = await client.post(
        f"/staff/patients/{adult.public_id}/guardian",
        data={"contact": contact, "relationship": "parent", "checked": "yes", "_csrf_token": token},
    )
    assert refused.status_code == 400


async def test_turning_18_ends_a_guardian_grant_and_tells_both(client: AsyncClient) -> None:
    turning = await make_patient(given="Almost", birth=years_ago(18, days=-3))  # 18 in 3 days
    await Patient.update({Patient.phone: "+15550166661"}).where(Patient.id == turning.id)
    parent = await make_person("Parent")
    await Patient.update({Patient.phone: "+15550166662"}).where(Patient.id == parent.patient.id)
    guardian = await grant(parent.account, turning, kind="proxy", relationship="parent")
    friend_account = await make_account("Chosen Helper")
    chosen = await grant(friend_account, turning, kind="proxy", relationship="parent")
    await AccessGrant.update({AccessGrant.granted_by_account: parent.account.id}).where(
        AccessGrant.id == chosen.id
    )

    assert await guardian_grants_end_at_adulthood() == 0  # still 17
    later = datetime.now(UTC) + timedelta(days=4)
    set_clock(lambda: later)
    assert await guardian_grants_end_at_adulthood() == 1
    ended = await AccessGrant.select(AccessGrant.revoked_reason).where(
        AccessGrant.id == guardian.id
    )
    assert ended == [{"revoked_reason": "adulthood"}]
    still = await AccessGrant.select(AccessGrant.revoked_at).where(AccessGrant.id == chosen.id)
    assert still == [{"revoked_at": None}]  # given by an adult, not by staff for a child
    for phone in ("+15550166661", "+15550166662"):
        notice = await OutboxMessage.select(OutboxMessage.body).where(
            OutboxMessage.recipient == phone
        )
        assert len(notice) == 1
        assert "Almost" not in notice[0]["body"]
    assert await AuditEvent.exists().where(
        AuditEvent.action == "sharing.ended_at_adulthood", AuditEvent.patient == turning.id
    )
    assert await guardian_grants_end_at_adulthood() == 0  # once only


async def test_confidential_visits_and_conversations_stay_with_the_adolescent(
    client: AsyncClient,
) -> None:
    teen = await make_person("Teen", birth=years_ago(15))
    parent = await make_person("Parent")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    clinician = await make_clinician()
    location = (
        await Clinician.select(Clinician.location.as_alias("id"))
        .where(Clinician.id == clinician)
        .first()
    )
    assert location is not None
    start = utcnow() + timedelta(days=2)
    for confidential in (False, True):
        await Appointment.insert(
            Appointment(
                patient=teen.patient.id,
                clinician=clinician,
                location=location["id"],
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                visit_type="sick_visit" if confidential else "well_child",
                confidential=confidential,
            )
        )
    await Conversation.insert(
        Conversation(patient=teen.patient.id, subject="Private", confidential=True)
    )
    await sign_in(client, parent, acting_patient_id=teen.patient.id)
    visits = await client.get("/visits")
    assert "Well-child visit" in visits.text
    assert "Sick visit" not in visits.text
    await sign_in(client, teen)
    own = await client.get("/visits")
    assert "Sick visit" in own.text
    assert "Private" in (await client.get("/messages")).text


async def test_admins_search_the_audit_log_and_others_cannot(client: AsyncClient) -> None:
    patient = await make_patient(given="Audited")
    await Patient.update({Patient.mrn: f"RFH-9{patient.id:05d}"}).where(Patient.id == patient.id)
    await staff_signed_in(client, role="front_desk")
    await client.get(f"/staff/patients/{patient.public_id}")
    assert (await client.get("/staff/audit")).status_code == 403
    await staff_signed_in(client, role="admin")
    found = await client.get("/staff/audit", params={"mrn": f"RFH-9{patient.id:05d}"})
    assert found.status_code == 200
    assert "staff.patient_view" in found.text
    assert "Front desk" in found.text
    bad = await client.get("/staff/audit", params={"since": "yesterday"})
    assert bad.status_code == 400


async def test_access_history_shows_staff_who_looked(client: AsyncClient) -> None:
    person = await make_person("Watched")
    staff = await staff_signed_in(client, role="nurse")
    await client.get(f"/staff/patients/{person.patient.public_id}")
    client.cookies.delete("portal_staff", path="/staff")
    await sign_in(client, person)
    history = await client.get("/access-history")
    assert history.status_code == 200
    assert f"Sam {staff.family_name}" in history.text
    assert "Nurse" in history.text
    assert "looked at your record" in history.text
    assert client.cookies.get(SESSION_COOKIE)


async def test_staff_lists_that_show_a_patient_reach_that_patient_s_access_history(
    client: AsyncClient,
) -> None:
    person = await make_person("Listed")
    await make_report(person.patient, name="Skin biopsy", released=False)
    searcher = await staff_signed_in(client, role="front_desk")
    found = await client.get("/staff", params={"q": person.patient.mrn})
    assert person.patient.public_id in found.text
    reviewer = await staff_signed_in(client, role="clinician")
    inbox = await client.get("/staff/results")
    assert "Skin biopsy" in inbox.text
    for staff, action in (
        (searcher, "staff.patient_search"),
        (reviewer, "staff.results_inbox_view"),
    ):
        assert await AuditEvent.exists().where(
            AuditEvent.actor_staff == staff.id,
            AuditEvent.patient == person.patient.id,
            AuditEvent.action == action,
        ), action
    client.cookies.delete("portal_staff", path="/staff")
    await sign_in(client, person)
    history = await client.get("/access-history")
    assert f"{searcher.given_name} {searcher.family_name}" in history.text
    assert "Front desk" in history.text
    assert f"{reviewer.given_name} {reviewer.family_name}" in history.text
    assert "Clinician" in history.text
