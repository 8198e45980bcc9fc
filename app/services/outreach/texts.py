"""Texts people send to the clinic's number (two-way SMS).

Twilio posts each one to the portal, signed: X-Twilio-Signature is the base64 HMAC-SHA1, keyed
with the account's auth token, of the URL Twilio called followed by every POST parameter,
sorted by name, as name and value run together. Anything unsigned or signed otherwise is
refused before it is read.

What a text says decides what happens, in English or Spanish:
- STOP (STOPALL, UNSUBSCRIBE, END, QUIT, CANCEL; PARAR, ALTO, DETENER, BAJA): the number is
  kept as opted out; from then on only texts the person asks for reach it (the outbox);
- START (UNSTOP, YES; COMENZAR, INICIAR, ALTA, SI): the number is taken off that list;
- HELP (INFO; AYUDA): what the texts are and how to reach the clinic;
- C or X: confirm or cancel the one upcoming visit of the records the number speaks for
  (app/services/visits/texted.py);
- anything else goes to the clinic's message queue as a text conversation on the record the
  number belongs to, and the person is told it arrived.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from app.access.grants import live_grants
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.notices.outreach import (
    send_text_from_unknown_number,
    send_text_received,
    send_texts_help,
    send_texts_started,
    send_texts_stopped,
    send_visit_cancelled_by_text,
    send_visit_confirmed_by_text,
    send_visit_not_changed_by_text,
)
from app.services.audit import audit_insert
from app.services.messages.targets import business_calendar, deadlines
from app.services.messages.threads import TOPIC_POOLS
from app.services.outbox import outbox_delivery_report
from app.services.visits.slots import is_unique_violation
from app.services.visits.texted import CANCELLED, CONFIRMED, visit_answer_by_text
from app.tables import (
    AccessGrant,
    Account,
    Conversation,
    Message,
    Patient,
    SmsOptOut,
    SmsReceived,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_TEXT = 1600  # Twilio joins a long text into one of at most 1600 characters
ADULT_AGE = 18

STOP_WORDS = {
    "en": ("STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL"),
    "es": ("PARAR", "ALTO", "DETENER", "BAJA"),
}
START_WORDS = {"en": ("START", "UNSTOP", "YES"), "es": ("COMENZAR", "INICIAR", "ALTA", "SI")}
HELP_WORDS = {"en": ("HELP", "INFO"), "es": ("AYUDA",)}
CONFIRM_WORDS = ("C", "CONFIRM", "CONFIRMAR")
CANCEL_WORDS = ("X",)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for a form POST to `url` with these parameters."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    *, auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str
) -> bool:
    """Whether the request was signed with this auth token (constant-time); never without
    a token configured."""
    if not auth_token or not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())


def keyword(body: str) -> str:
    """The text as a keyword: trimmed, upper case, without accents or final punctuation."""
    plain = unicodedata.normalize("NFD", body.strip().upper())
    plain = "".join(char for char in plain if not unicodedata.combining(char))
    return plain.rstrip(".!").strip()


def _language_of(word: str, table: dict[str, tuple[str, ...]]) -> str | None:
    return next((language for language, words in table.items() if word in words), None)


@dataclass(frozen=True)
class Sender:
    """Who a number is: the records it may speak for (its own first) and its language."""

    patient_ids: list[int]
    own_record: int | None  # where a free text goes
    account_id: int | None
    locale: str | None


async def _sender(number: str) -> Sender:
    """The records whose phone is this number (the adult's own first), and the records an
    account with this phone looks after for visits."""
    today = clinic_today()
    rows = await Patient.select(
        Patient.id, Patient.birth_date, Patient.preferred_language, Patient.phone_is_own
    ).where(Patient.phone == number, Patient.deceased_at.is_null())
    adults = [row for row in rows if _age(row["birth_date"], today) >= ADULT_AGE]
    own = adults[0] if len(adults) == 1 else (rows[0] if len(rows) == 1 else None)
    # The number speaks for a record by itself only when it is that record's own: the one
    # record with it, the one adult among the records sharing it, or a record where staff
    # marked it as the patient's own. Any other record with this number (a parent's number
    # on a grown child's record) is reached only through the account's grants below, with
    # their scopes.
    ids = [row["id"] for row in rows if row is own or row["phone_is_own"]]
    account = await Account.select(Account.id, Account.locale).where(
        Account.phone == number, Account.disabled_at.is_null()
    )
    account_id = account[0]["id"] if len(account) == 1 else None
    if account_id is None and own is not None:
        # The record's own account, for the language it chose.
        held = (
            await AccessGrant.select(AccessGrant.account, AccessGrant.account.locale)
            .where(
                AccessGrant.patient == own["id"],
                AccessGrant.kind == "self",
                AccessGrant.revoked_at.is_null(),
            )
            .first()
        )
        if held:
            account_id = held["account"]
            account = [{"id": held["account"], "locale": held["account.locale"]}]
    if len(account) == 1:
        # The records this account may see visits of, by the one grants selector (a proxy
        # whose scope leaves out visits cannot confirm or cancel one).
        grants = await live_grants(account_id=account[0]["id"])
        for grant in grants:
            if "appointments" in grant.areas(today) and grant.patient.id not in ids:
                ids.append(grant.patient.id)
        if own is None:
            own_id = next((g.patient.id for g in grants if g.is_self), None)
            if own_id is not None:
                own = {"id": own_id, "preferred_language": None}
    locale = account[0]["locale"] if len(account) == 1 else None
    if locale is None and own is not None:
        locale = own["preferred_language"]
    return Sender(
        patient_ids=ids,
        own_record=own["id"] if own else None,
        account_id=account_id,
        locale=locale,
    )


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


async def sms_opted_out(number: str) -> bool:
    return await SmsOptOut.exists().where(SmsOptOut.number == number)


async def sms_inbound(*, number: str, body: str, provider_id: str = "") -> str:
    """Act on one text from `number`, once per provider id; what it was taken as: stop |
    start | help | confirmed | cancelled | not_changed | message | unknown | duplicate.
    Everything it does is one transaction with the note of its id, so a retry of a text that
    failed is acted on, and a retry of one that worked is not."""
    try:
        async with write_transaction():
            if provider_id:
                if await SmsReceived.exists().where(SmsReceived.provider_id == provider_id):
                    return "duplicate"
                await SmsReceived.insert(SmsReceived(provider_id=provider_id[:64]))
            return await _act_on(number, body)
    except Exception as error:
        if provider_id and is_unique_violation(error):
            return "duplicate"  # the same text, taken by another process at this moment
        raise


async def sms_received_purge(*, keep_days: int) -> int:
    """Forget the ids of texts taken longer ago than any provider retries."""
    cutoff = utcnow() - timedelta(days=keep_days)
    async with write_transaction():
        gone = (
            await SmsReceived.delete()
            .where(SmsReceived.received_at < cutoff)
            .returning(SmsReceived.id)
        )
    return len(gone)


async def _act_on(number: str, body: str) -> str:
    number = number.strip()[:40]
    body = body.replace("\x00", "").strip()[:MAX_TEXT]
    word = keyword(body)
    async with write_transaction():
        sender = await _sender(number)
        stop = _language_of(word, STOP_WORDS)
        if stop is not None:
            if not await sms_opted_out(number):
                await SmsOptOut.insert(SmsOptOut(number=number, keyword=word[:20]))
            await send_texts_stopped(number=number, locale=_reply_locale(stop, sender))
            return "stop"
        start = _language_of(word, START_WORDS)
        if start is not None:
            await SmsOptOut.delete().where(SmsOptOut.number == number)
            await send_texts_started(number=number, locale=_reply_locale(start, sender))
            return "start"
        helped = _language_of(word, HELP_WORDS)
        if helped is not None:
            await send_texts_help(number=number, locale=_reply_locale(helped, sender))
            return "help"
    if word in CONFIRM_WORDS or word in CANCEL_WORDS:
        answer = "confirm" if word in CONFIRM_WORDS else "cancel"
        outcome = await visit_answer_by_text(
            patient_ids=sender.patient_ids, answer=answer, account_id=sender.account_id
        )
        async with write_transaction():
            if outcome == CONFIRMED:
                await send_visit_confirmed_by_text(number=number, locale=sender.locale)
            elif outcome == CANCELLED:
                await send_visit_cancelled_by_text(number=number, locale=sender.locale)
            else:
                await send_visit_not_changed_by_text(number=number, locale=sender.locale)
        return outcome if outcome in (CONFIRMED, CANCELLED) else "not_changed"
    async with write_transaction():
        if sender.own_record is None or not body:
            await send_text_from_unknown_number(number=number, locale=sender.locale)
            return "unknown"
        await _to_queue(sender, number, body)
        await send_text_received(number=number, locale=sender.locale)
    return "message"


def _reply_locale(language: str, sender: Sender) -> str | None:
    """A Spanish keyword is answered in Spanish; an English one in the person's language."""
    return "es" if language == "es" else sender.locale


async def _to_queue(sender: Sender, number: str, body: str) -> None:
    """The text joins this record's open text conversation, or starts one in the front
    desk's pool (inside the caller's transaction)."""
    assert sender.own_record is not None
    now = utcnow()
    open_one = (
        await Conversation.select(Conversation.id, Conversation.public_id)
        .where(
            Conversation.patient == sender.own_record,
            Conversation.via == "sms",
            Conversation.status == "open",
        )
        .first()
    )
    if open_one is None:
        calendar = await business_calendar(None)
        due = deadlines(calendar, "other", now)
        conversation = Conversation(
            patient=sender.own_record,
            subject="Text message",
            topic="other",
            status="open",
            created_at=now,
            last_message_at=now,
            pool=TOPIC_POOLS["other"],
            waiting_since=now,
            due_at=due.due_at,
            warn_at=due.warn_at,
            via="sms",
        )
        await Conversation.insert(conversation)
        conversation_id, public_id = conversation.id, str(conversation.public_id)
    else:
        conversation_id, public_id = open_one["id"], str(open_one["public_id"])
        # The clinic's clock starts again when it had answered everything before.
        await Conversation.update({Conversation.waiting_since: now}).where(
            Conversation.id == conversation_id, Conversation.waiting_since.is_null()
        )
        await Conversation.update({Conversation.last_message_at: now}).where(
            Conversation.id == conversation_id
        )
    await Message.insert(
        Message(
            conversation=conversation_id,
            sender="patient",
            body=body,
            sent_at=now,
            author_account=sender.account_id,
            author_name=f"Text from ***{number[-4:]}",
        )
    )
    await audit_insert(
        actor_account=sender.account_id,
        patient=sender.own_record,
        action="messages.sms_received",
        resource_type="Communication",
        resource_id=public_id,
        user_agent="sms",
    )


async def sms_delivery_status(*, provider_id: str, status: str) -> bool:
    """A status callback for a text we sent; whether it was one of ours."""
    return await outbox_delivery_report(provider_id=provider_id[:100], status=status)
