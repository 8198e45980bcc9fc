"""How a message reaches a person. A message to a phone or email goes to the outbox as it
is; a notice (a result, a reminder, a change to who can see a record) goes to everyone who
follows the record for that kind of news, by each person's choice of channel
(app/services/notifications.py), in their language, waiting out their quiet hours (pushes and
texts), with a fallback to a text or an email when no device can take a push: whether that
is known when the notice is queued (no device) or only when the last device's push gives up
(404/410). Nothing about health ever goes in a notice."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from app.access.grants import live_grants
from app.clinic import clinic_today
from app.clock import utcnow
from app.notices.words import Say, Wording, notice_words, say_in, sms_text
from app.services.accounts import account_contacts
from app.services.notifications import preferences_for, quiet_until
from app.services.outbox import Undelivered, outbox_enqueue, outbox_on_undelivered
from app.services.push import push_enqueue
from app.services.self_access import HOLDER_COLUMNS, holder_from, is_minor, self_access_refusal
from app.tables import OutboxMessage, Patient

# A phone or email to write to: ("sms", "+15550100100") or ("email", "a@b.org").
Contact = tuple[str, str]
# A message, to be worded in each reader's language.
Words = Callable[[Say], Wording]

# category: (the area of a record it belongs to, None for the record as a whole; the screen
# its push opens unless the notice names a closer one)
ROUTES: dict[str, tuple[str | None, str]] = {
    "messages": ("messages", "/messages"),
    "results": ("results", "/results"),
    "appointments": ("appointments", "/visits"),
    "bills": ("billing", "/bills"),
    "news": (None, "/home"),
    "access": (None, "/sharing"),
    "test": (None, "/notifications"),
}


def contacts_of(phone: str | None, email: str | None) -> list[Contact]:
    return [(channel, value) for channel, value in (("sms", phone), ("email", email)) if value]


async def send_to(
    *,
    to: Contact,
    words: Wording,
    kind: str,
    not_before: datetime | None = None,
    key: str | None = None,
) -> str:
    """Queue one text or email (inside the caller's transaction); its outbox key."""
    channel, address = to
    return await outbox_enqueue(
        channel=channel,
        recipient=address,
        subject=words.email_subject,
        body=sms_text(words.sms) if channel == "sms" else words.email_body,
        key=key,
        not_before=not_before,
        kind=kind,
    )


async def notify_account(
    *, account_id: int, category: str, event: str, words: Words, url: str | None = None
) -> list[str]:
    """Queue this account's notice (inside the caller's transaction); the channels used.

    `event` names what happened (e.g. "result-<public id>"): pushes carry it as their tag,
    so the same event shown twice replaces itself. `url` is the exact screen to open (by
    random public id only) instead of the category's."""
    prefs = await preferences_for(account_id)
    wording = words(say_in(prefs.locale))
    wanted = list(prefs.wants(category))
    # A test is sent when the person asks for it, so they can see it arrive.
    wait = None if category == "test" else quiet_until(prefs, utcnow())
    kind = f"notice.{category}"
    used: list[str] = []
    phone, email = await account_contacts(account_id)
    if "push" in wanted:
        # Pushes alone: if every one of them gives up, a text or email goes instead.
        alone = "sms" not in wanted and "email" not in wanted
        if await push_enqueue(
            account_id=account_id,
            title=wording.push_title,
            body=wording.push_body,
            url=url or ROUTES[category][1],
            tag=event,
            not_before=wait,
            kind=kind,
            notice=secrets.token_hex(16) if alone else None,
        ):
            used.append("push")
        elif alone:
            wanted.append(_fallback_channel(phone))  # no device takes a push
    if "sms" in wanted and not phone and "email" not in wanted:
        wanted.append("email")
    for channel, recipient in contacts_of(phone, email):
        if channel in wanted:
            # Texts wait out the quiet hours; an email does not wake anyone.
            await send_to(
                to=(channel, recipient),
                words=wording,
                kind=kind,
                not_before=wait if channel == "sms" else None,
            )
            used.append(channel)
    return used


def _fallback_channel(phone: str | None) -> str:
    """Instead of a push: a text, or an email for someone with no phone on file."""
    return "sms" if phone else "email"


async def _send_push_fallback(notice: Undelivered) -> None:
    """A notice none of whose pushes arrived (the devices are gone): once, by text or email,
    within the same quiet hours, saying what the push said."""
    key = f"fallback-{notice.notice}"
    if await OutboxMessage.exists().where(OutboxMessage.idempotency_key == key):
        return
    phone, email = await account_contacts(notice.account_id)
    channel = _fallback_channel(phone)
    recipient = phone if channel == "sms" else email
    if not recipient:
        return
    prefs = await preferences_for(notice.account_id)
    wait = None
    if channel == "sms" and notice.kind != "notice.test":
        wait = quiet_until(prefs, utcnow())
    await send_to(
        to=(channel, recipient),
        words=notice_words(say_in(prefs.locale), notice.subject),
        kind=notice.kind,
        key=key,
        not_before=wait,
    )


outbox_on_undelivered(_send_push_fallback)


async def notify_patient(
    *,
    patient_id: int,
    category: str,
    event: str,
    words: Words,
    confidential: bool = False,
    url: str | None = None,
) -> int:
    """Everyone who follows this record for this kind of news: the patient's own account
    and caregivers whose live grant opens that area, by the grants selector's rules (for a
    confidential item, the patient alone: even "you have a new result" would tell). A
    patient without an account yet gets a text (or email) at the contact on the record, in
    the clinic's language, except of a confidential item while a guardian looks after the
    record; a minor hears of one only at a contact of their own that no guardian or other
    adult uses; nothing goes to the contact of a deceased patient. Returns how many people
    were told."""
    area = ROUTES[category][0]
    today = clinic_today()
    grants = await live_grants(patient_id=patient_id)
    accounts = sorted(
        {grant.account_id for grant in grants if grant.may_hear_of(area, confidential, today)}
    )
    for account_id in accounts:
        await notify_account(
            account_id=account_id, category=category, event=event, words=words, url=url
        )
    if accounts:
        return len(accounts)
    if confidential and any(grant.is_clinic_given_guardian for grant in grants):
        return 0  # a minor's record may carry a guardian's phone or email
    row = await Patient.select(*HOLDER_COLUMNS).where(Patient.id == patient_id).first()
    if row is None:
        return 0
    holder = holder_from(row)
    if holder.deceased:
        return 0  # the phone or address on a deceased patient's record is now the family's
    contacts = contacts_of(holder.phone, holder.email)
    if confidential and is_minor(holder.birth_date):
        # A minor's record usually carries a parent's phone or email, often before any
        # guardian has access: only a contact marked as the teenager's own, which no
        # guardian (with access or invited) and no other adult uses, may hear of it.
        contacts = [
            (channel, recipient)
            for channel, recipient in contacts
            if await self_access_refusal(holder, channel) is None
        ]
    if not contacts:
        return 0
    await send_to(to=contacts[0], words=words(say_in(None)), kind=f"notice.{category}")
    return 1
