"""What the portal sends people: every text fits two segments in every language, no message
names a patient or says anything about their results, and each one is worded in the
reader's language (their account's choice, else the clinic's)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial

import pytest

import app.notices
from app.channels import DeliveryError, Outgoing
from app.channels.email import ConsoleEmail
from app.channels.sms import ConsoleSMS
from app.db import write_transaction
from app.i18n import SUPPORTED_LOCALES
from app.notices import (
    send_adulthood_reached,
    send_book_online,
    send_caregiver_invite,
    send_caregiver_invite_code,
    send_codes_paused,
    send_enrollment_link,
    send_enrollment_reminder,
    send_finish_enrollment,
    send_guardian_access_ended,
    send_message_reply,
    send_new_caregiver_notice,
    send_new_passkey_announcement,
    send_payment_due,
    send_plan_charge_soon,
    send_result_ready,
    send_shared_sign_in_notice,
    send_sign_in_code,
    send_statement_ready,
    send_test_notice,
    send_text_from_unknown_number,
    send_text_received,
    send_texts_help,
    send_texts_started,
    send_texts_stopped,
    send_turn_on_push,
    send_visit_cancelled_by_text,
    send_visit_confirmed_by_text,
    send_visit_not_changed_by_text,
    send_visit_reminder,
    send_waitlist_offer,
    send_waitlist_offer_gone,
    send_yearly_checkup,
)
from app.notices.outreach import Reach
from app.notices.words import MESSAGES, is_gsm7, say_in, sms_segments, sms_text
from app.services.outbox import outbox_deliver
from app.tables import Account, OutboxMessage
from tests.factories import (
    email_address,
    make_push_device,
    make_reachable_person,
    make_report,
    sent_to,
    unique,
)

# A long clinic name and address, so the texts that carry them are measured at their longest.
CLINIC = "Riverside Family Health Center of Greater Springfield"
BASE = "https://portal.riversidefamilyhealth.org"
TOKEN = "x" * 32  # secrets.token_urlsafe(24)
ENGLISH_RESULT = "You have a new test result. Open the patient portal to see it."
SPANISH_RESULT = "Tiene un resultado nuevo. Abra el portal del paciente para verlo."
SAMPLES: dict[str, dict[str, str]] = {
    "sign_in_code": {"code": "123456"},
    "codes_paused": {},
    "shared_sign_in": {},
    "enrollment_link": {"clinic": CLINIC, "link": f"{BASE}/enroll/{TOKEN}"},
    "enrollment_reminder": {"clinic": CLINIC, "link": f"{BASE}/enroll/{TOKEN}"},
    "new_passkey": {},
    "result_ready": {},
    "message_reply": {"clinic": CLINIC},
    "visit_reminder": {},
    "waitlist_offer": {"clinic": CLINIC, "link": f"{BASE}/visits/offers/{TOKEN}"},
    "waitlist_offer_gone": {},
    "trial_notice": {},
    "caregiver_invite": {"clinic": CLINIC, "link": f"{BASE}/care/{TOKEN}"},
    "caregiver_invite_code": {"code": "123456"},
    "access_changed": {},
    "guardian_access_ended": {"clinic": CLINIC},
    "adulthood_reached": {"clinic": CLINIC},
    # Outreach: campaign templates (a /go/ link of 22 random characters) and text answers.
    **{
        f"campaign_{name}": {"clinic": CLINIC, "link": f"{BASE}/go/{'x' * 22}"}
        for name in ("book_online", "finish_enrollment", "turn_on_push", "yearly_checkup")
    },
    **{
        f"sms_{name}": {"clinic": CLINIC, "phone": "(555) 010-0100"}
        for name in (
            "stopped",
            "started",
            "help",
            "confirmed",
            "cancelled",
            "call_us",
            "received",
            "unknown_number",
        )
    },
    "statement_ready": {"clinic": CLINIC, "link": f"{BASE}/bills/pay"},
    "payment_due": {"clinic": CLINIC, "link": f"{BASE}/bills/pay"},
    "plan_charge_soon": {"clinic": CLINIC, "link": f"{BASE}/bills"},
}


def test_every_message_is_measured_here() -> None:
    assert sorted(SAMPLES) == sorted(MESSAGES)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_text_fits_two_segments_in_gsm7(name: str, locale: str) -> None:
    text = sms_text(MESSAGES[name].words(say_in(locale), **SAMPLES[name]).sms)
    assert is_gsm7(text), text
    assert sms_segments(text) <= 2, text


def test_segments_are_counted_as_phones_count_them() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3
    assert sms_segments("€" * 80) == 1  # two septets each
    assert sms_segments("€" * 81) == 2
    assert sms_segments("ó" * 70) == 1  # UCS-2
    assert sms_segments("ó" * 71) == 2
    assert sms_segments("ó" * 134) == 2
    assert sms_segments("ó" * 135) == 3


def test_a_text_drops_only_the_accents_gsm7_lacks() -> None:
    assert sms_text("Su código, ¿señal? Teléfono “ya”") == 'Su codigo, ¿señal? Teléfono "ya"'
    # A name in another script goes as UCS-2 anyway: nothing is dropped then.
    assert sms_text("Clínica 和平: su código") == "Clínica 和平: su código"


async def _with_everything_chosen(account_id: int) -> None:
    """Pushes, texts and email for results and visits, and a device to push to."""
    everything = {key: ["push", "sms", "email"] for key in ("results", "appointments")}
    await Account.update({Account.notify_prefs: json.dumps(everything)}).where(
        Account.id == account_id
    )
    await make_push_device(account_id)


@pytest.mark.parametrize("locale", [None, "es"])
async def test_no_message_names_the_patient_or_their_results(locale: str | None) -> None:
    person, phone, email = await make_reachable_person("Zephyrine", locale=locale)
    patient, account = person.patient, person.account
    report = await make_report(patient, name="Zebra striped panel", value=987.6)
    await _with_everything_chosen(account.id)
    grant_id, visit_id = unique("grant"), unique("visit")
    sends: dict[str, Callable[[], Awaitable[object]]] = {
        "send_sign_in_code": lambda: send_sign_in_code(
            to=("sms", phone), code="123456", account_id=account.id
        ),
        "send_codes_paused": lambda: send_codes_paused(account_id=account.id, patient_id=None),
        "send_shared_sign_in_notice": lambda: send_shared_sign_in_notice(
            account_id=account.id, to=[("sms", phone), ("email", email)]
        ),
        "send_enrollment_link": lambda: send_enrollment_link(
            to=("sms", phone), patient_id=patient.id, clinic=CLINIC, link=f"{BASE}/enroll/x"
        ),
        "send_enrollment_reminder": lambda: send_enrollment_reminder(
            to=("sms", phone), patient_id=patient.id, clinic=CLINIC, link=f"{BASE}/enroll/x"
        ),
        "send_new_passkey_announcement": lambda: send_new_passkey_announcement(
            account_id=account.id
        ),
        "send_result_ready": lambda: send_result_ready(
            patient_id=patient.id, report_public_id=str(report.public_id), confidential=False
        ),
        "send_message_reply": lambda: send_message_reply(
            patient_id=patient.id, conversation_public_id=unique("thread"), confidential=False
        ),
        "send_visit_reminder": lambda: send_visit_reminder(
            patient_id=patient.id, visit_public_id=visit_id, confidential=True
        ),
        "send_waitlist_offer": lambda: send_waitlist_offer(
            patient_id=patient.id,
            offer_public_id=unique("offer"),
            path="/visits/offers/x",
            link=f"{BASE}/visits/offers/x",
            confidential=False,
        ),
        "send_waitlist_offer_gone": lambda: send_waitlist_offer_gone(
            patient_id=patient.id, slot_public_id=unique("slot"), confidential=False
        ),
        "send_caregiver_invite": lambda: send_caregiver_invite(
            to=("email", email), link=f"{BASE}/care/x"
        ),
        "send_caregiver_invite_code": lambda: send_caregiver_invite_code(
            to=("email", email), code="654321"
        ),
        "send_new_caregiver_notice": lambda: send_new_caregiver_notice(
            patient_id=patient.id, grant_public_id=grant_id
        ),
        "send_guardian_access_ended": lambda: send_guardian_access_ended(
            account_id=account.id, grant_public_id=grant_id
        ),
        "send_adulthood_reached": lambda: send_adulthood_reached(
            patient_id=patient.id, grant_public_id=grant_id
        ),
        "send_book_online": lambda: send_book_online(
            reach=Reach(account_id=account.id, phone=phone, email=email),
            link=f"{BASE}/go/x",
            path="/go/x",
            key=unique("campaign"),
        ),
        "send_finish_enrollment": lambda: send_finish_enrollment(
            reach=Reach(account_id=account.id, phone=phone, email=email),
            link=f"{BASE}/go/x",
            path="/go/x",
            key=unique("campaign"),
        ),
        "send_turn_on_push": lambda: send_turn_on_push(
            reach=Reach(account_id=account.id, phone=phone, email=email),
            link=f"{BASE}/go/x",
            path="/go/x",
            key=unique("campaign"),
        ),
        "send_yearly_checkup": lambda: send_yearly_checkup(
            reach=Reach(account_id=account.id, phone=phone, email=email),
            link=f"{BASE}/go/x",
            path="/go/x",
            key=unique("campaign"),
        ),
        "send_texts_stopped": partial(send_texts_stopped, number=phone, locale=locale),
        "send_texts_started": partial(send_texts_started, number=phone, locale=locale),
        "send_texts_help": partial(send_texts_help, number=phone, locale=locale),
        "send_visit_confirmed_by_text": lambda: send_visit_confirmed_by_text(
            number=phone, locale=locale
        ),
        "send_visit_cancelled_by_text": lambda: send_visit_cancelled_by_text(
            number=phone, locale=locale
        ),
        "send_visit_not_changed_by_text": lambda: send_visit_not_changed_by_text(
            number=phone, locale=locale
        ),
        "send_text_received": partial(send_text_received, number=phone, locale=locale),
        "send_text_from_unknown_number": lambda: send_text_from_unknown_number(
            number=phone, locale=locale
        ),
        "send_statement_ready": lambda: send_statement_ready(
            patient_id=patient.id, statement_public_id=unique("statement")
        ),
        "send_payment_due": lambda: send_payment_due(
            patient_id=patient.id, statement_public_id=unique("statement")
        ),
        "send_plan_charge_soon": lambda: send_plan_charge_soon(
            patient_id=patient.id, event=unique("plan")
        ),
    }
    every_send = sorted(name for name in app.notices.__all__ if name.startswith("send_"))
    assert sorted([*sends, "send_test_notice"]) == every_send
    mine = OutboxMessage.recipient.is_in([phone, email]) | (OutboxMessage.account == account.id)
    for name, send in sends.items():
        before = await OutboxMessage.count().where(mine)
        async with write_transaction():
            await send()
        assert await OutboxMessage.count().where(mine) > before, f"{name} sent nothing"
    assert await send_test_notice(account_id=account.id)
    sent = await OutboxMessage.select(
        OutboxMessage.channel, OutboxMessage.subject, OutboxMessage.body
    ).where(mine)
    assert {row["channel"] for row in sent} == {"push", "sms", "email"}
    said = " ".join(f"{row['subject']} {row['body']}" for row in sent).lower()
    assert "123456" in said  # the texts themselves are read
    born = patient.birth_date
    for secret in (
        patient.given_name,
        patient.family_name,
        patient.mrn,
        born.isoformat(),
        f"{born.month}/{born.day}/{born.year}",
        report.name,
        "Glucose",  # the report's test
        "987.6",  # its value
    ):
        assert secret.lower() not in said, secret


async def test_a_notice_speaks_the_account_s_language_else_the_clinic_s() -> None:
    ana, ana_phone, _ = await make_reachable_person("Ana", locale="es")
    bob, bob_phone, _ = await make_reachable_person("Bob")
    for person in (ana, bob):
        await Account.update({Account.notify_prefs: '{"results": ["sms"]}'}).where(
            Account.id == person.account.id
        )
        async with write_transaction():
            await send_result_ready(
                patient_id=person.patient.id, report_public_id=unique("r"), confidential=False
            )
    assert await sent_to(ana_phone) == SPANISH_RESULT
    assert await sent_to(bob_phone) == ENGLISH_RESULT


async def test_a_link_to_a_record_with_an_account_follows_that_account_s_language() -> None:
    person, phone, _ = await make_reachable_person("Ines", locale="es")
    async with write_transaction():
        await send_enrollment_link(
            to=("sms", phone), patient_id=person.patient.id, clinic="Clinic", link=f"{BASE}/e"
        )
    assert (await sent_to(phone)).startswith("Clinic le invita a su portal del paciente.")


async def test_an_invitation_to_someone_not_known_yet_is_in_the_clinic_s_language() -> None:
    contact = email_address("invitee")
    async with write_transaction():
        await send_caregiver_invite(to=("email", contact), link=f"{BASE}/care/x")
    assert "you are invited to help someone" in await sent_to(contact)


class _GonePush:
    """A push service that no longer knows any device."""

    async def send(self, message: Outgoing) -> str:
        raise DeliveryError("push 410", gone=True)


async def test_the_text_instead_of_a_lost_push_speaks_the_account_s_language() -> None:
    person, phone, _ = await make_reachable_person("Luz", locale="es")
    await make_push_device(person.account.id)
    async with write_transaction():
        await send_result_ready(
            patient_id=person.patient.id, report_public_id=unique("r"), confidential=False
        )
    channels = {"push": _GonePush(), "sms": ConsoleSMS(), "email": ConsoleEmail()}
    while await outbox_deliver(channels=channels, worker="w", lease=timedelta(minutes=2)):
        if await OutboxMessage.exists().where(OutboxMessage.recipient == phone):
            break
    assert await sent_to(phone) == SPANISH_RESULT
