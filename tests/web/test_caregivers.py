"""Caregivers: an adult invites one with a scope, the caregiver accepts without a password
and sees exactly that scope, revoking takes effect on the next request, staff invite a
minor's guardian, and a guardian's access ends at 18 with both told."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from httpx import AsyncClient, Response

from app.clock import set_clock, utcnow
from app.handlers.support import SESSION_COOKIE
from app.services.caregivers import INVITE_ATTEMPTS_PER_ACCOUNT, guardian_grants_end_at_adulthood
from app.services.phones import phone_allowed
from app.services.rate_limit import rate_limit_allow
from app.settings import Settings
from app.tables import (
    AccessGrant,
    Account,
    AuditEvent,
    CaregiverInvite,
    Conversation,
    OutboxMessage,
    Patient,
)
from tests.factories import (
    code_sent_to,
    grant,
    link_sent_to,
    make_account,
    make_patient,
    make_person,
    make_report,
    make_visit,
    own_address,
    start_session,
    unique,
    years_ago,
)
from tests.web.conftest import csrf_from, flashed, serving, sign_in, staff_signed_in


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """Each test from an address of its own: invitation codes, like sign-in codes, are
    limited per address, and the database keeps the counts across tests."""
    async with serving(settings, address=own_address()) as test_client:
        yield test_client


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
    assert sent.headers["location"] == "/sharing"
    assert flashed(sent) == "caregiver_invited"
    return await link_sent_to(contact, "/care/")


async def _ask_for_code(client: AsyncClient, link: str) -> Response:
    page = await client.get(link)
    assert page.status_code == 200
    return await client.post(
        f"{link}/code", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )


async def _accept_as_new_person(client: AsyncClient, link: str, name: str, contact: str) -> None:
    client.cookies.clear()
    sent = await _ask_for_code(client, link)
    assert sent.headers["location"] == link
    page = await client.get(link)
    accepted = await client.post(
        link,
        data={
            "name": name,
            "code": await code_sent_to(contact, kind="contact_code"),
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert accepted.headers["location"] == "/welcome"


async def test_a_caregiver_with_appointments_and_bills_sees_exactly_that_until_revoked(
    settings: object,
) -> None:
    from app.settings import get_settings

    patient = await make_person("Rosa")
    await make_visit(patient.patient, starts_at=utcnow() + timedelta(days=3))
    contact = f"{unique('carer')}@mail.test"
    async with serving(get_settings(), address=own_address()) as rosa:
        await sign_in(rosa, patient)
        link = await _invite(rosa, contact, "appointments_billing")
        message = await OutboxMessage.select(OutboxMessage.body).where(
            OutboxMessage.recipient == contact
        )
        assert "Rosa" not in message[0]["body"]  # no names, nothing about health
        async with serving(get_settings(), address=own_address()) as carer:
            await _accept_as_new_person(carer, link, "Sam Carer", contact)
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
    await _accept_as_new_person(client, link, "Temp Helper", contact)
    assert (await client.get("/home")).status_code == 200
    later = utcnow() + timedelta(days=5)
    set_clock(lambda: later)
    # A fresh session on the later day (the old one has long gone idle): no record left.
    helper = await Account.select(Account.id).where(Account.display_name == "Temp Helper").first()
    assert helper is not None
    client.cookies.set(SESSION_COOKIE, await start_session(helper["id"]))
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
    phone = f"+1617555{unique('')[-4:]}"  # a valid number in the United States
    link = await _invite(client, phone, "full")
    waiting = (await client.get("/sharing")).text  # the invitation waiting, as people read it
    assert f"(617) 555-{phone[-4:]}" in waiting
    assert phone not in waiting
    await _accept_as_new_person(client, link, "Phone Person", phone)
    client.cookies.clear()
    form = await client.get("/sign-in/code")
    await client.post("/sign-in/code", data={"contact": phone, "_csrf_token": csrf_from(form.text)})
    code = await code_sent_to(phone, kind="sign_in_code")
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
    assert sent.headers["location"] == f"/staff/patients/{child.public_id}"
    assert flashed(sent) == "guardian_invited"
    abroad = await client.post(
        f"/staff/patients/{child.public_id}/guardian",
        data={
            "contact": "+44 20 7946 0000",
            "relationship": "parent",
            "checked": "yes",
            "_csrf_token": token,
        },
    )
    assert abroad.status_code == 400
    assert "texts only phone numbers in United States" in abroad.text
    assert await OutboxMessage.exists().where(OutboxMessage.recipient == contact)
    adult_page = await client.get(f"/staff/patients/{adult.public_id}")
    assert "Add a parent or guardian" not in adult_page.text
    refused = await client.post(
        f"/staff/patients/{adult.public_id}/guardian",
        data={"contact": contact, "relationship": "parent", "checked": "yes", "_csrf_token": token},
    )
    assert refused.status_code == 400


async def test_turning_18_ends_a_guardian_grant_and_tells_both(client: AsyncClient) -> None:
    await guardian_grants_end_at_adulthood()  # what other tests left for housekeeping
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
    start = utcnow() + timedelta(days=2)
    for confidential in (False, True):
        await make_visit(
            teen.patient,
            starts_at=start,
            confidential=confidential,
            visit_type="sick_visit" if confidential else "well_child",
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


async def test_caregiver_lists_leave_out_a_guardian_whose_access_ended_at_18(
    client: AsyncClient,
) -> None:
    grown = await make_person("Grown", birth=years_ago(18, days=2))
    parent_account = await make_account("Former Guardian")
    await grant(parent_account, grown.patient, kind="proxy", relationship="parent")
    helper_account = await make_account("Chosen Friend")
    await grant(helper_account, grown.patient, kind="proxy", relationship="friend")
    # Housekeeping has not run yet: the grant row is still open, but access has ended.
    await staff_signed_in(client, role="front_desk")
    console = await client.get(f"/staff/patients/{grown.patient.public_id}")
    assert "Chosen Friend" in console.text
    assert "Former Guardian" not in console.text
    client.cookies.delete("portal_staff", path="/staff")
    await sign_in(client, grown)
    own = await client.get("/sharing")
    assert "Chosen Friend" in own.text
    assert "Former Guardian" not in own.text


async def _try_invite(client: AsyncClient, contact: str, token: str) -> Response:
    return await client.post(
        "/sharing/invite",
        data={
            "contact": contact,
            "relationship": "friend",
            "scope": "billing",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )


async def _invitations_sent_by(account_id: int) -> tuple[int, int]:
    """(invitations stored, messages queued to their contacts)."""
    invites = await CaregiverInvite.select(CaregiverInvite.contact).where(
        CaregiverInvite.invited_by_account == account_id
    )
    contacts = [row["contact"] for row in invites]
    queued = await OutboxMessage.count().where(OutboxMessage.recipient.is_in(contacts or [""]))
    return len(invites), queued


async def test_invitations_stop_at_five_waiting_and_ten_a_day_with_nothing_sent(
    client: AsyncClient,
) -> None:
    patient = await make_person("Busy")
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    # A burst, as a script would send it: only the first five go out.
    answers = [await _try_invite(client, f"{unique('burst')}@mail.test", token) for _ in range(30)]
    assert [answer.status_code for answer in answers].count(303) == 5
    refused = answers[-1]
    assert refused.status_code == 429
    assert "You have 5 invitations waiting" in refused.text
    assert await _invitations_sent_by(patient.account.id) == (5, 5)

    # Cancelled invitations no longer wait, but they were sent today: five more, then no more.
    await CaregiverInvite.update({CaregiverInvite.voided_at: utcnow()}).where(
        CaregiverInvite.invited_by_account == patient.account.id
    )
    for _ in range(5):
        sent = await _try_invite(client, f"{unique('more')}@mail.test", token)
        assert sent.status_code == 303
    refused = await _try_invite(client, f"{unique('late')}@mail.test", token)
    assert refused.status_code == 429
    assert "as many invitations as you can today" in refused.text
    assert await _invitations_sent_by(patient.account.id) == (10, 10)

    # A day later (those five accepted or cancelled by then) the daily count starts again.
    await CaregiverInvite.update({CaregiverInvite.voided_at: utcnow()}).where(
        CaregiverInvite.invited_by_account == patient.account.id
    )
    later = utcnow() + timedelta(days=1, minutes=1)
    set_clock(lambda: later)
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    assert (await _try_invite(client, f"{unique('next')}@mail.test", token)).status_code == 303


async def test_invitations_sent_at_once_cannot_slip_past_the_cap(client: AsyncClient) -> None:
    patient = await make_person("Racing")
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    answers = await asyncio.gather(
        *(_try_invite(client, f"{unique('race')}@mail.test", token) for _ in range(12))
    )
    assert [answer.status_code for answer in answers].count(303) == 5
    assert await _invitations_sent_by(patient.account.id) == (5, 5)


async def test_the_shared_rate_limiter_counts_invitations_too(client: AsyncClient) -> None:
    patient = await make_person("Counted")
    for _ in range(INVITE_ATTEMPTS_PER_ACCOUNT.limit):  # tries counted by any app process
        await rate_limit_allow(INVITE_ATTEMPTS_PER_ACCOUNT, patient.account.public_id)
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    refused = await _try_invite(client, f"{unique('rl')}@mail.test", token)
    assert refused.status_code == 429
    assert "You have tried many times" in refused.text
    assert await _invitations_sent_by(patient.account.id) == (0, 0)


async def test_invitations_text_only_numbers_in_the_clinic_s_countries(
    client: AsyncClient,
) -> None:
    patient = await make_person("Abroad")
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    for number in ("+44 20 7946 0000", "+1 416 555 0123", "+1 809 555 0100"):  # UK, Canada, DR
        refused = await _try_invite(client, number, token)
        assert refused.status_code == 400
        assert "texts only phone numbers in United States" in refused.text
        assert number in refused.text  # the form keeps what was typed
    unassigned = await _try_invite(client, "+1 555 017 1234", token)  # no such area code
    assert unassigned.status_code == 400
    assert "Please enter a mobile phone number or an email address" in unassigned.text
    assert await _invitations_sent_by(patient.account.id) == (0, 0)
    assert (await _try_invite(client, "(617) 555-0123", token)).status_code == 303
    client.cookies.set("portal_locale", "es")
    spanish = await client.get("/sharing", headers={"Accept-Language": "es"})
    token = csrf_from(spanish.text)
    refused = await client.post(
        "/sharing/invite",
        data={
            "contact": "+442079460000",
            "relationship": "friend",
            "scope": "billing",
            "_csrf_token": token,
        },
        headers={"Accept-Language": "es"},
    )
    assert "Estados Unidos" in refused.text


def test_the_clinic_chooses_which_countries_it_texts() -> None:
    assert phone_allowed("+16175550123", ("US",))
    assert not phone_allowed("+14165550123", ("US",))
    assert phone_allowed("+14165550123", ("US", "CA"))
    assert not phone_allowed("+15550171234", ("US", "CA"))  # not a valid number anywhere


def test_only_mobile_numbers_are_texted() -> None:
    """Premium-rate, toll-free and personal numbers cost the clinic or cannot take a text;
    a landline cannot either, where the numbering plan tells it apart."""
    assert not phone_allowed("+19005550199", ("US",))  # premium rate
    assert not phone_allowed("+18005550199", ("US",))  # toll free
    assert not phone_allowed("+15002345678", ("US",))  # personal number
    assert not phone_allowed("+442079460958", ("GB",))  # a London landline
    assert phone_allowed("+447400123456", ("GB",))  # a UK mobile


@pytest.mark.parametrize("typed", ["+1 900 555 0199", "(900) 976-1234", "1-800-555-0199"])
async def test_an_invitation_to_a_premium_rate_or_toll_free_number_is_refused(
    client: AsyncClient, typed: str
) -> None:
    patient = await make_person("Paying")
    await sign_in(client, patient)
    token = csrf_from((await client.get("/sharing")).text)
    refused = await _try_invite(client, typed, token)
    assert refused.status_code == 400
    assert "texts only mobile phones" in refused.text
    assert await _invitations_sent_by(patient.account.id) == (0, 0)


async def test_the_care_link_shows_a_first_name_only_before_acceptance(
    client: AsyncClient,
) -> None:
    patient = await make_person("Rosalind")
    await sign_in(client, patient)
    contact = f"{unique('fn')}@mail.test"
    link = await _invite(client, contact, "billing")
    client.cookies.clear()
    page = await client.get(link)
    assert "Help Rosalind with their care" in page.text
    assert patient.patient.family_name not in page.text
    assert contact not in page.text  # the contact, in part only
    assert f"{contact[0]}\u2022\u2022\u2022@mail.test" in page.text
    await _ask_for_code(client, link)
    assert patient.patient.family_name not in (await client.get(link)).text


async def test_accepting_takes_the_code_sent_to_the_invited_contact(client: AsyncClient) -> None:
    patient = await make_person()
    await sign_in(client, patient)
    contact = f"{unique('proof')}@mail.test"
    link = await _invite(client, contact, "billing")
    client.cookies.clear()

    async def accept(code: str) -> Response:
        page = await client.get(link)
        return await client.post(
            link,
            data={"name": "Link Holder", "code": code, "_csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )

    # Holding the link is not enough.
    assert (await accept("")).status_code == 400
    assert (await accept("123456")).status_code == 400
    assert not await OutboxMessage.exists().where(
        OutboxMessage.recipient == contact, OutboxMessage.kind == "contact_code"
    )
    sent = await _ask_for_code(client, link)
    assert sent.status_code == 303
    code = await code_sent_to(contact, kind="contact_code")
    wrong = await accept(f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.text
    assert "Link Holder" in wrong.text  # the form keeps what was typed
    # The code proves the contact only: it never signs anyone in.
    handle = client.cookies.get("portal_care_code")
    assert handle
    client.cookies.set("portal_code", handle)
    check = await client.get("/sign-in/code/check")
    signed = await client.post(
        "/sign-in/code/check",
        data={"code": code, "_csrf_token": csrf_from(check.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 400
    assert not await AccessGrant.exists().where(
        AccessGrant.patient == patient.patient.id, AccessGrant.kind == "proxy"
    )
    accepted = await accept(code)
    assert accepted.headers["location"] == "/welcome"
    assert await AccessGrant.exists().where(
        AccessGrant.patient == patient.patient.id, AccessGrant.kind == "proxy"
    )


async def test_a_code_for_one_invitation_does_not_open_another(client: AsyncClient) -> None:
    patient = await make_person()
    await sign_in(client, patient)
    mine, theirs = f"{unique('mine')}@mail.test", f"{unique('theirs')}@mail.test"
    my_link = await _invite(client, mine, "billing")
    their_link = await _invite(client, theirs, "full")
    client.cookies.clear()
    await _ask_for_code(client, my_link)
    page = await client.get(their_link)  # the code cookie is there, for the wrong contact
    refused = await client.post(
        their_link,
        data={
            "name": "Forwarded",
            "code": await code_sent_to(mine, kind="contact_code"),
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert refused.status_code == 400
    assert "no longer works" in refused.text


async def test_a_signed_in_caregiver_also_enters_the_code(client: AsyncClient) -> None:
    patient = await make_person()
    helper = await make_person("Helper")
    await sign_in(client, patient)
    contact = f"{unique('signed')}@mail.test"
    link = await _invite(client, contact, "billing")
    await sign_in(client, helper)
    page = await client.get(link)
    assert "Send me a code" in page.text
    without = await client.post(
        link, data={"code": "", "_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert without.status_code == 400
    await _ask_for_code(client, link)
    page = await client.get(link)
    done = await client.post(
        link,
        data={
            "code": await code_sent_to(contact, kind="contact_code"),
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/home"


async def test_invitation_codes_have_the_sign_in_codes_limits(client: AsyncClient) -> None:
    patient = await make_person()
    await sign_in(client, patient)
    contact = f"{unique('lim')}@mail.test"
    link = await _invite(client, contact, "billing")
    client.cookies.clear()
    answers = [(await _ask_for_code(client, link)).status_code for _ in range(4)]
    assert answers == [303, 303, 303, 429]
    limited = await client.get(link)
    assert limited.status_code == 200
    codes = await OutboxMessage.count().where(
        OutboxMessage.recipient == contact, OutboxMessage.kind == "contact_code"
    )
    assert codes == 3


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
