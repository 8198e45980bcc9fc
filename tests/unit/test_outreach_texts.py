"""Two-way texts: Twilio's signature, STOP and START in English and Spanish (and what a STOP
still lets through), "C" and "X" on the one upcoming visit, everything else to the message
queue, and delivery receipts on the outbox row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import write_transaction
from app.notices import send_sign_in_code, send_visit_reminder
from app.services.outbox import outbox_delivery_report
from app.services.outreach.texts import (
    sms_inbound,
    sms_opted_out,
    twilio_signature,
    twilio_signature_valid,
)
from app.tables import Account, Appointment, Conversation, Message, OutboxMessage
from tests.factories import (
    appointment_type,
    grant,
    make_account,
    make_patient,
    make_reachable_person,
    make_visit,
    phone_number,
    with_contacts,
    years_ago,
)

# Twilio's worked example ("Webhooks security"): auth token 12345, this URL, these parameters.
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]


def test_the_signature_is_the_one_twilio_documents() -> None:
    assert twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    # The order the parameters came in does not matter: they are sorted.
    assert twilio_signature_valid(
        auth_token="12345",
        url=TWILIO_URL,
        params=list(reversed(TWILIO_PARAMS)),
        signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
    )


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("12345", TWILIO_URL, [*TWILIO_PARAMS[:2], ("Digits", "9999"), *TWILIO_PARAMS[3:]], None),
        ("12345", TWILIO_URL.replace("bar=2", "bar=3"), TWILIO_PARAMS, None),
        ("54321", TWILIO_URL, TWILIO_PARAMS, None),
        ("12345", TWILIO_URL, TWILIO_PARAMS, ""),
        ("", TWILIO_URL, TWILIO_PARAMS, None),
    ],
    ids=["changed parameter", "changed url", "other token", "no signature", "no token set"],
)
def test_anything_else_is_not_twilio(
    token: str, url: str, params: list[tuple[str, str]], signature: str | None
) -> None:
    assert not twilio_signature_valid(
        auth_token=token,
        url=url,
        params=params,
        signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=" if signature is None else signature,
    )


async def _texts_to(phone: str, kind: str) -> int:
    return int(
        await OutboxMessage.count().where(
            OutboxMessage.recipient == phone, OutboxMessage.kind == kind
        )
    )


async def _remind(patient_id: int, visit_public_id: str) -> None:
    async with write_transaction():
        await send_visit_reminder(
            patient_id=patient_id, visit_public_id=visit_public_id, confidential=False
        )


@pytest.mark.parametrize(("stop", "start"), [("STOP", "START"), ("Parar", "comenzar")])
async def test_stop_stops_reminder_texts_but_a_code_the_person_asks_for_still_goes(
    stop: str, start: str
) -> None:
    person, phone, _ = await make_reachable_person("Stella")
    visit = await make_visit(person.patient, starts_at=datetime.now(UTC) + timedelta(days=2))
    await _remind(person.patient.id, str(visit.public_id))
    assert await _texts_to(phone, "notice.appointments") == 1

    assert await sms_inbound(number=phone, body=f" {stop} ") == "stop"
    assert await sms_opted_out(phone)
    # The one answer to STOP goes: the person asked for it.
    assert await _texts_to(phone, "sms_reply") == 1
    await _remind(person.patient.id, str(visit.public_id))
    assert await _texts_to(phone, "notice.appointments") == 1  # no second reminder text
    async with write_transaction():
        await send_sign_in_code(to=("sms", phone), code="123456", account_id=person.account.id)
    assert await _texts_to(phone, "sign_in_code") == 1

    assert await sms_inbound(number=phone, body=start) == "start"
    assert not await sms_opted_out(phone)
    await _remind(person.patient.id, str(visit.public_id))
    assert await _texts_to(phone, "notice.appointments") == 2


async def test_a_spanish_keyword_is_answered_in_spanish() -> None:
    _, phone, _ = await make_reachable_person("Ayla")
    assert await sms_inbound(number=phone, body="AYUDA") == "help"
    assert await sms_inbound(number=phone, body="HELP") == "help"
    replies = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "sms_reply"
    )
    spanish, english = (row["body"] for row in replies)
    assert "Responda C" in spanish
    assert "Reply C" in english


async def test_c_confirms_the_one_upcoming_visit_and_only_that_one() -> None:
    person, phone, _ = await make_reachable_person("Cora")
    other, _, _ = await make_reachable_person("Otto")
    soon = datetime.now(UTC) + timedelta(days=3)
    mine = await make_visit(person.patient, starts_at=soon)
    past = await make_visit(person.patient, starts_at=datetime.now(UTC) - timedelta(days=30))
    theirs = await make_visit(other.patient, starts_at=soon)

    assert await sms_inbound(number=phone, body="c") == "confirmed"

    confirmed = {
        row["id"]
        for row in await Appointment.select(Appointment.id).where(
            Appointment.id.is_in([mine.id, past.id, theirs.id]),
            Appointment.confirmed_at.is_not_null(),
        )
    }
    assert confirmed == {mine.id}
    assert "confirmed" in await _newest_reply(phone)


async def test_with_two_upcoming_visits_c_changes_nothing_and_asks_to_call() -> None:
    person, phone, _ = await make_reachable_person("Dora")
    for days in (3, 10):
        await make_visit(person.patient, starts_at=datetime.now(UTC) + timedelta(days=days))
    assert await sms_inbound(number=phone, body="C") == "not_changed"
    assert not await Appointment.exists().where(
        Appointment.patient == person.patient.id, Appointment.confirmed_at.is_not_null()
    )
    assert "call" in await _newest_reply(phone)


async def test_x_cancels_the_one_upcoming_visit_within_its_online_window() -> None:
    await appointment_type("follow_up")  # cancelled online until 24 hours before
    person, phone, _ = await make_reachable_person("Xena")
    visit = await make_visit(person.patient, starts_at=datetime.now(UTC) + timedelta(days=4))
    assert await sms_inbound(number=phone, body="X") == "cancelled"
    row = await Appointment.select(Appointment.status, Appointment.cancelled_by).where(
        Appointment.id == visit.id
    )
    assert row == [{"status": "cancelled", "cancelled_by": "patient"}]

    late, late_phone, _ = await make_reachable_person("Lola")
    tomorrow = await make_visit(late.patient, starts_at=datetime.now(UTC) + timedelta(hours=5))
    assert await sms_inbound(number=late_phone, body="X") == "not_changed"
    still = await Appointment.select(Appointment.status).where(Appointment.id == tomorrow.id)
    assert still == [{"status": "booked"}]


async def test_a_confidential_visit_is_never_changed_by_text() -> None:
    person, phone, _ = await make_reachable_person("Tess")
    await make_visit(
        person.patient, starts_at=datetime.now(UTC) + timedelta(days=3), confidential=True
    )
    assert await sms_inbound(number=phone, body="C") == "not_changed"


async def test_any_other_text_lands_in_the_queue_as_a_text_conversation() -> None:
    person, phone, _ = await make_reachable_person("Quinn")
    assert await sms_inbound(number=phone, body="Can I bring my son too?") == "message"
    assert await sms_inbound(number=phone, body="He is 4.") == "message"
    threads = await Conversation.select(
        Conversation.id, Conversation.pool, Conversation.via, Conversation.waiting_since
    ).where(Conversation.patient == person.patient.id)
    assert len(threads) == 1
    thread = threads[0]
    assert (thread["via"], thread["pool"]) == ("sms", "front_desk")
    assert thread["waiting_since"] is not None
    bodies = await Message.select(Message.body).where(Message.conversation == thread["id"])
    assert [row["body"] for row in bodies] == ["Can I bring my son too?", "He is 4."]
    assert "got your text" in await _newest_reply(phone)


async def test_a_text_from_a_number_no_record_has_goes_nowhere_but_is_answered() -> None:
    stranger = phone_number()
    assert await sms_inbound(number=stranger, body="hello?") == "unknown"
    assert "could not match" in await _newest_reply(stranger)


async def test_a_number_on_several_childrens_records_speaks_for_the_adult() -> None:
    parent, phone, _ = await make_reachable_person("Paula")
    child, _, _ = await make_reachable_person("Kid", birth=datetime(2019, 1, 1).date())
    await with_contacts(child.patient, phone=phone, email=None)
    assert await sms_inbound(number=phone, body="Is the clinic open Saturday?") == "message"
    assert await Conversation.exists().where(
        Conversation.patient == parent.patient.id, Conversation.via == "sms"
    )
    assert not await Conversation.exists().where(Conversation.patient == child.patient.id)


async def test_a_delivery_receipt_marks_the_outbox_row_delivered() -> None:
    _, phone, _ = await make_reachable_person("Dee")
    await sms_inbound(number=phone, body="HELP")
    await OutboxMessage.update(
        {OutboxMessage.status: "sent", OutboxMessage.provider_id: "SM42" + phone[-6:]}
    ).where(OutboxMessage.recipient == phone)
    sid = "SM42" + phone[-6:]
    assert await outbox_delivery_report(provider_id=sid, status="sent")
    assert await outbox_delivery_report(provider_id=sid, status="delivered")
    # A late "sent" does not undo it.
    assert await outbox_delivery_report(provider_id=sid, status="sent")
    row = await OutboxMessage.select(
        OutboxMessage.delivery_status, OutboxMessage.delivered_at
    ).where(OutboxMessage.provider_id == sid)
    assert row[0]["delivery_status"] == "delivered"
    assert row[0]["delivered_at"] is not None
    assert not await outbox_delivery_report(provider_id="SMnotours", status="delivered")


async def _newest_reply(phone: str) -> str:
    row = (
        await OutboxMessage.select(OutboxMessage.body)
        .where(OutboxMessage.recipient == phone, OutboxMessage.kind == "sms_reply")
        .order_by(OutboxMessage.id, ascending=False)
        .first()
    )
    assert row is not None
    return str(row["body"])


async def test_a_text_the_provider_sends_again_is_acted_on_once() -> None:
    person, phone, _ = await make_reachable_person("Twice")
    sid = f"SM{phone[1:]}retry"
    assert await sms_inbound(number=phone, body="Running late", provider_id=sid) == "message"
    assert await sms_inbound(number=phone, body="Running late", provider_id=sid) == "duplicate"
    assert await Message.count().where(Message.conversation.patient == person.patient.id) == 1


@pytest.mark.parametrize(("scope", "outcome"), [("full", "confirmed"), ("billing", "not_changed")])
async def test_a_caregiver_s_c_applies_only_where_their_grant_opens_visits(
    scope: str, outcome: str
) -> None:
    father, _, _ = await make_reachable_person("Walt", birth=datetime(1944, 3, 3).date())
    await make_visit(father.patient, starts_at=datetime.now(UTC) + timedelta(days=6))
    son = await make_account("Dave")
    phone = phone_number()
    await Account.update({Account.phone: phone}).where(Account.id == son.id)
    await grant(son, father.patient, kind="proxy", scope=scope, relationship="child")
    assert await sms_inbound(number=phone, body="C") == outcome


async def test_a_parent_s_number_on_a_grown_child_s_record_changes_none_of_its_visits() -> None:
    """A number shared by two adults' records is neither one's own: without a grant that
    opens visits, "X" from it cancels nothing."""
    shared = phone_number()
    parent, _, _ = await make_reachable_person("Parent")
    await with_contacts(parent.patient, phone=shared)
    child = await make_patient(given="Grown", birth=years_ago(19))
    await with_contacts(child, phone=shared, phone_is_own=False)
    visit = await make_visit(child, starts_at=datetime.now(UTC) + timedelta(days=10))

    answer = await sms_inbound(number=shared, body="X", provider_id=f"SMx{shared[1:]}")

    assert answer != "cancelled"
    row = await Appointment.select(Appointment.status).where(Appointment.id == visit.id)
    assert row == [{"status": "booked"}]
