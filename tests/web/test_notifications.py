"""Notices by each person's choice: the preference matrix, quiet hours, the fallback when
no device takes a push, one subscription per device, and no notice that would tell a
guardian about a teenager's confidential result."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from app.clock import set_clock
from app.db import write_transaction
from app.notices import notify_account, notify_patient
from app.notices.results import RESULT_READY
from app.notices.visits import VISIT_REMINDER
from app.services.notifications import preferences_parse, quiet_until
from app.services.outbox import outbox_claim
from app.tables import Account, OutboxMessage, Patient, PushSubscription
from tests.factories import (
    PUSH_KEYS,
    PUSH_SERVICE,
    Person,
    grant,
    make_dead_text,
    make_patient,
    make_person,
    make_push_device,
    make_reachable_person,
    make_visit,
    new_message,
    unique,
    with_contacts,
    years_ago,
)
from tests.web.conftest import csrf_from, flashed, sign_in, staff_signed_in


async def _all_sent_to(recipient: str) -> list[dict[str, object]]:
    return await (
        OutboxMessage.select(
            OutboxMessage.channel,
            OutboxMessage.body,
            OutboxMessage.next_attempt_at,
            OutboxMessage.kind,
        )
        .where(OutboxMessage.recipient == recipient)
        .order_by(OutboxMessage.id)
    )


async def test_the_preference_matrix_decides_the_channel(client: AsyncClient) -> None:
    person, phone, email = await make_reachable_person()
    await sign_in(client, person)
    page = await client.get("/notifications")
    assert page.status_code == 200
    saved = await client.post(
        "/notifications",
        data={"results.email": "on", "messages.sms": "on", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert saved.headers["location"] == "/notifications"
    assert flashed(saved) == "notifications_saved"
    account_id = person.account.id
    async with write_transaction():
        assert await notify_account(
            account_id=account_id, category="results", words=RESULT_READY.words, event="r1"
        ) == ["email"]
        assert (
            await notify_account(
                account_id=account_id,
                category="appointments",
                words=VISIT_REMINDER.words,
                event="a1",
            )
            == []
        )
    sent = await _all_sent_to(email)
    assert [row["body"] for row in sent] == [
        "You have a new test result. Open the patient portal to see it."
    ]
    assert await _all_sent_to(phone) == []


async def test_without_a_device_a_push_falls_back_to_a_text(client: AsyncClient) -> None:
    person, phone, _ = await make_reachable_person()
    account_id = person.account.id
    async with write_transaction():
        used = await notify_account(
            account_id=account_id, category="messages", words=new_message, event="m1"
        )
    assert used == ["sms"]
    await make_push_device(account_id)
    async with write_transaction():
        used = await notify_account(
            account_id=account_id, category="messages", words=new_message, event="m2"
        )
    assert used == ["push"]
    assert len(await _all_sent_to(phone)) == 1


def test_quiet_hours_cross_midnight_and_end_in_the_morning() -> None:
    prefs = preferences_parse("", 21 * 60, 8 * 60)
    # 23:30 in New York (the clinic's zone) is 04:30 UTC the next day in November.
    late = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    until = quiet_until(prefs, late)
    assert until is not None
    assert until.astimezone(UTC) == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 local
    assert quiet_until(prefs, datetime(2026, 11, 24, 17, 0, tzinfo=UTC)) is None  # noon
    assert quiet_until(preferences_parse("", None, None), late) is None


async def test_texts_wait_out_quiet_hours_but_email_does_not(client: AsyncClient) -> None:
    person, phone, email = await make_reachable_person()
    account_id = person.account.id
    now = datetime.now(UTC)
    local_minute = (now.hour * 60 + now.minute + 24 * 60 - 5 * 60) % (24 * 60)
    await Account.update(
        {
            Account.notify_prefs: '{"messages": ["sms", "email"]}',
            # Quiet from an hour ago to an hour from now, whatever the time of the run.
            Account.quiet_start: (local_minute - 60) % 1440,
            Account.quiet_end: (local_minute + 60) % 1440,
        }
    ).where(Account.id == account_id)
    async with write_transaction():
        await notify_account(
            account_id=account_id, category="messages", words=new_message, event="q1"
        )
    text = (await _all_sent_to(phone))[0]
    mail = (await _all_sent_to(email))[0]
    assert text["next_attempt_at"] > now + timedelta(minutes=30)  # type: ignore[operator]
    assert mail["next_attempt_at"] < now + timedelta(minutes=1)  # type: ignore[operator]


async def test_one_subscription_per_device_from_known_push_services_only(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await client.get("/notifications")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    headers = {"X-CSRFToken": token.group(1)}
    endpoint = PUSH_SERVICE + unique("dev")
    for _ in range(2):
        made = await client.post(
            "/push/subscriptions", json={"endpoint": endpoint, "keys": PUSH_KEYS}, headers=headers
        )
        assert made.status_code == 201
    assert await PushSubscription.count().where(PushSubscription.endpoint == endpoint) == 1
    refused = await client.post(
        "/push/subscriptions",
        json={"endpoint": "https://169.254.169.254/latest", "keys": PUSH_KEYS},
        headers=headers,
    )
    assert refused.status_code == 400
    listing = await client.get("/notifications")
    device = re.search(r"/push/subscriptions/([^/]+)/remove", listing.text)
    assert device is not None
    await client.post(
        f"/push/subscriptions/{device.group(1)}/remove",
        data={"_csrf_token": csrf_from(listing.text)},
    )
    assert not await PushSubscription.exists().where(PushSubscription.endpoint == endpoint)


async def test_a_guardian_hears_of_results_but_never_of_a_confidential_one() -> None:
    teen = await make_person("Teen", birth=years_ago(15))
    parent, parent_phone, _ = await make_reachable_person()
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    async with write_transaction():
        assert (
            await notify_patient(
                patient_id=teen.patient.id, category="results", words=RESULT_READY.words, event="x"
            )
            == 2
        )
    assert len(await _all_sent_to(parent_phone)) == 1
    async with write_transaction():
        told = await notify_patient(
            patient_id=teen.patient.id,
            category="results",
            words=RESULT_READY.words,
            event="y",
            confidential=True,
        )
    assert told == 1
    assert len(await _all_sent_to(parent_phone)) == 1  # nothing more for the guardian


async def test_a_patient_not_enrolled_yet_gets_a_text_at_the_record_s_phone() -> None:
    patient = await make_patient(given="New")
    phone = f"+1555013{unique('')[-4:]}"
    await Patient.update({Patient.phone: phone}).where(Patient.id == patient.id)
    async with write_transaction():
        assert (
            await notify_patient(
                patient_id=patient.id, category="results", words=RESULT_READY.words, event="z"
            )
            == 1
        )
    assert [row["channel"] for row in await _all_sent_to(phone)] == ["sms"]


async def test_the_front_desk_sees_what_was_not_delivered_and_can_try_again(
    client: AsyncClient,
) -> None:
    dead = await make_dead_text(
        recipient="+15550129999",
        body="Your portal sign-in code is 123456.",
        attempts=8,
        last_error="twilio 400: invalid number",
    )
    await staff_signed_in(client, role="clinician")
    assert (await client.get("/staff/deliveries")).status_code == 403
    await staff_signed_in(client, role="front_desk")
    page = await client.get("/staff/deliveries")
    assert "***9999" in page.text
    assert "+15550129999" not in page.text
    assert "123456" not in page.text  # never the text itself
    assert "invalid number" in page.text
    retried = await client.post(
        f"/staff/deliveries/{dead.public_id}/retry",
        data={"_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    row = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.attempts).where(
        OutboxMessage.id == dead.id
    )
    assert row == [{"status": "pending", "attempts": 0}]


async def test_a_visit_tomorrow_gets_one_reminder_through_the_person_s_choices() -> None:
    from app.services.visits import visit_reminders_send

    teen = await make_person("Teen", birth=years_ago(15))
    parent, parent_phone, _ = await make_reachable_person()
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    teen_phone = f"+1555012{unique('')[-4:]}"
    # Marked as the teenager's own: a family phone on their record would hear nothing.
    await with_contacts(teen.patient, phone=teen_phone, phone_is_own=True)
    soon = datetime.now(UTC) + timedelta(hours=20)
    for confidential, starts in ((False, soon), (True, soon), (False, soon + timedelta(days=3))):
        await make_visit(teen.patient, starts_at=starts, confidential=confidential)
    assert await visit_reminders_send() >= 2
    assert await visit_reminders_send() == 0  # once per visit
    # Default choices for visits: push, then a text (no device here).
    assert len(await _all_sent_to(teen_phone)) == 2
    assert len(await _all_sent_to(parent_phone)) == 1  # not the confidential one


async def test_a_guardian_of_a_15_year_old_hears_nothing_of_messages_or_confidential_items() -> (
    None
):
    teen = await make_person("Teen", birth=years_ago(15))
    parent, parent_phone, _ = await make_reachable_person()
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    async with write_transaction():
        # From 12 a guardian's access has no messages: not even "you have a new message".
        told = await notify_patient(
            patient_id=teen.patient.id, category="messages", words=new_message, event="m"
        )
        assert told == 1  # the teenager alone
        told = await notify_patient(
            patient_id=teen.patient.id,
            category="messages",
            words=new_message,
            event="c",
            confidential=True,
        )
        assert told == 1
    assert await _all_sent_to(parent_phone) == []


async def test_a_confidential_item_of_a_minor_without_an_account_is_not_texted_to_the_record() -> (
    None
):
    teen = await make_patient(given="Quiet", birth=years_ago(15))
    parent, parent_phone, _ = await make_reachable_person()
    # A minor's record often carries the parent's phone.
    await Patient.update({Patient.phone: parent_phone}).where(Patient.id == teen.id)
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    async with write_transaction():
        told = await notify_patient(
            patient_id=teen.id,
            category="results",
            words=RESULT_READY.words,
            event="c",
            confidential=True,
        )
    assert told == 0
    assert await _all_sent_to(parent_phone) == []


async def test_a_teen_s_confidential_notice_skips_a_phone_not_marked_as_theirs() -> None:
    """No guardian has access yet, but the record's phone is a parent's (not marked as the
    teenager's own): a confidential result is not texted there."""
    teen = await make_patient(given="Tess", birth=years_ago(15))
    parent_phone = f"+1202555{unique('')[-4:]}"
    await with_contacts(teen, phone=parent_phone, phone_is_own=False)
    async with write_transaction():
        told = await notify_patient(
            patient_id=teen.id,
            category="results",
            words=RESULT_READY.words,
            event="c",
            confidential=True,
        )
    assert told == 0
    assert await _all_sent_to(parent_phone) == []


async def test_a_teen_s_confidential_notice_skips_a_guardian_s_invited_phone(
    client: AsyncClient,
) -> None:
    """Staff invited the parent at the phone on the record; before the parent accepts, a
    confidential result's notice goes only to the email the teenager has of their own."""
    teen = await make_patient(given="Uma", birth=years_ago(15))
    parent_phone, own_email = f"+1202556{unique('')[-4:]}", f"{unique('uma')}@mail.test"
    await with_contacts(teen, phone=parent_phone, email=own_email, email_is_own=True)
    await staff_signed_in(client, role="front_desk")
    page = await client.get(f"/staff/patients/{teen.public_id}")
    sent = await client.post(
        f"/staff/patients/{teen.public_id}/guardian",
        data={
            "contact": parent_phone,
            "relationship": "parent",
            "checked": "yes",
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    async with write_transaction():
        told = await notify_patient(
            patient_id=teen.id,
            category="results",
            words=RESULT_READY.words,
            event="c",
            confidential=True,
        )
    assert told == 1
    assert [row["kind"] for row in await _all_sent_to(parent_phone)] == ["caregiver_invite"]
    assert [row["kind"] for row in await _all_sent_to(own_email)] == ["notice.results"]


async def test_a_teen_s_confidential_notice_reaches_a_phone_of_their_own() -> None:
    teen = await make_patient(given="Vic", birth=years_ago(15))
    own_phone = f"+1202557{unique('')[-4:]}"
    await with_contacts(teen, phone=own_phone, phone_is_own=True)
    async with write_transaction():
        told = await notify_patient(
            patient_id=teen.id,
            category="results",
            words=RESULT_READY.words,
            event="c",
            confidential=True,
        )
    assert told == 1
    assert [row["kind"] for row in await _all_sent_to(own_phone)] == ["notice.results"]


async def test_a_guardian_whose_access_ended_at_18_hears_nothing_before_housekeeping() -> None:
    grown = await make_patient(given="Grown", birth=years_ago(18, days=2))
    parent, parent_phone, _ = await make_reachable_person()
    await grant(parent.account, grown, kind="proxy", relationship="parent")  # not yet tidied
    async with write_transaction():
        await notify_patient(
            patient_id=grown.id, category="results", words=RESULT_READY.words, event="r"
        )
        await notify_patient(
            patient_id=grown.id, category="appointments", words=VISIT_REMINDER.words, event="a"
        )
    assert await _all_sent_to(parent_phone) == []


async def _quiet(person: Person, start: str, end: str) -> None:
    def minutes(at: str) -> int:
        hour, minute = at.split(":")
        return int(hour) * 60 + int(minute)

    await Account.update(
        {Account.quiet_start: minutes(start), Account.quiet_end: minutes(end)}
    ).where(Account.id == person.account.id)


async def _pushes(person: Person) -> list[dict[str, Any]]:
    return await OutboxMessage.select(
        OutboxMessage.body, OutboxMessage.next_attempt_at, OutboxMessage.kind
    ).where(OutboxMessage.account == person.account.id, OutboxMessage.channel == "push")


async def test_a_push_inside_quiet_hours_waits_until_they_end() -> None:
    person, _, _ = await make_reachable_person()
    await make_push_device(person.account.id)
    await _quiet(person, "00:00", "23:59")
    # 10:00 in New York, the clinic's zone: quiet until 23:59 the same evening.
    morning = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    set_clock(lambda: morning)
    async with write_transaction():
        assert await notify_account(
            account_id=person.account.id, category="messages", words=new_message, event="q2"
        ) == ["push"]
    [push] = await _pushes(person)
    end = datetime(2026, 11, 25, 4, 59, tzinfo=UTC)
    assert push["next_attempt_at"] == end
    lease = timedelta(minutes=2)
    assert await outbox_claim(worker="w", limit=50, lease=lease) == []  # held
    set_clock(lambda: end + timedelta(seconds=1))
    claimed = await outbox_claim(worker="w", limit=50, lease=lease)
    assert [c.message.channel for c in claimed if c.account_id == person.account.id] == ["push"]


async def test_a_push_late_at_night_waits_for_the_morning_across_midnight() -> None:
    person, _, _ = await make_reachable_person()
    await make_push_device(person.account.id)
    await _quiet(person, "21:00", "08:00")
    set_clock(lambda: datetime(2026, 11, 24, 4, 30, tzinfo=UTC))  # 23:30 in New York
    async with write_transaction():
        await notify_account(
            account_id=person.account.id, category="results", words=RESULT_READY.words, event="q3"
        )
    [push] = await _pushes(person)
    assert push["next_attempt_at"] == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00


async def test_a_result_notice_opens_that_report_by_its_public_id_only() -> None:
    from app.services.results.release import results_release_due
    from app.tables import LabReport
    from tests.factories import make_report

    person, _, _ = await make_reachable_person()
    await make_push_device(person.account.id)
    report = await make_report(person.patient, name="Skin biopsy", released=False)
    await LabReport.update({LabReport.hold_until: datetime.now(UTC) - timedelta(minutes=1)}).where(
        LabReport.id == report.id
    )
    await results_release_due()
    [push] = await _pushes(person)
    sent = json.loads(str(push["body"]))
    assert sent["url"] == f"/results/{report.public_id}"
    assert sent["tag"] == f"result-{report.public_id}"
    assert "biopsy" not in str(push["body"]).lower()
    assert push["kind"] == "notice.results"


async def test_a_test_notice_says_it_is_a_test_even_with_no_channel_for_news(
    client: AsyncClient,
) -> None:
    person, phone, _ = await make_reachable_person()
    await sign_in(client, person)
    page = await client.get("/notifications")
    # Texts for messages only, nothing for news.
    await client.post(
        "/notifications",
        data={"messages.sms": "on", "_csrf_token": csrf_from(page.text)},
    )
    await _quiet(person, "00:00", "23:59")  # asked for now: it does not wait
    sent = await client.post(
        "/notifications/test",
        data={"_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert sent.headers["location"] == "/notifications"
    assert flashed(sent) == "test_notice_sent"
    [text] = await _all_sent_to(phone)
    assert str(text["body"]).startswith("This is a test notice from the patient portal.")
    assert "message from your care team" not in str(text["body"])
    assert text["next_attempt_at"] < datetime.now(UTC) + timedelta(minutes=1)  # type: ignore[operator]


async def test_quiet_hours_from_midnight_show_as_they_were_saved(client: AsyncClient) -> None:
    person, _, _ = await make_reachable_person()
    await sign_in(client, person)
    page = await client.get("/notifications")
    await client.post(
        "/notifications",
        data={
            "quiet": "on",
            "quiet_start": "00:00",
            "quiet_end": "23:59",
            "_csrf_token": csrf_from(page.text),
        },
    )
    shown = await client.get("/notifications")
    assert 'name="quiet_start" value="00:00"' in shown.text
    assert 'name="quiet_end" value="23:59"' in shown.text


async def test_a_teenagers_confidential_notices_never_reach_the_family_phone_on_their_record() -> (
    None
):
    """The teenager's own email keeps their account; the family phone on the same record is
    the parent's: a confidential result or visit is told on neither to the parent."""
    from app.notices.results import send_result_ready
    from app.notices.visits import send_visit_reminder
    from app.services.self_access import self_grants_outside_age_rules
    from tests.factories import email_address, make_report

    parent, family_phone, _ = await make_reachable_person("Parent")
    teen = await make_person("Teen", birth=years_ago(15))
    own_email = email_address("teen")
    await with_contacts(teen.patient, phone=family_phone, email=own_email, email_is_own=True)
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await self_grants_outside_age_rules()  # the teenager's own access stays
    report = await make_report(teen.patient, name="Chlamydia NAAT", confidential=True)
    async with write_transaction():
        told = await send_result_ready(
            patient_id=teen.patient.id, report_public_id=str(report.public_id), confidential=True
        )
    assert told == 1
    await make_push_device(teen.account.id)
    visit = await make_visit(
        teen.patient, starts_at=datetime.now(UTC) + timedelta(days=1), confidential=True
    )
    async with write_transaction():
        await send_visit_reminder(
            patient_id=teen.patient.id, visit_public_id=str(visit.public_id), confidential=True
        )
    assert await OutboxMessage.count().where(OutboxMessage.recipient == family_phone) == 0
    # The teenager still hears, on the contact that is theirs.
    assert await OutboxMessage.count().where(OutboxMessage.recipient == own_email) >= 1
