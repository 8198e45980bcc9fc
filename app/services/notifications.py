"""One path for every notice (a reply, a result, a reminder, a bill, news): each person's
choice of channel per category, quiet hours (pushes and texts wait for their end), and a
fallback to a text or an email when no device can take a push, whether that is known when the
notice is queued (no device) or only when the last device's push gives up (404/410).
Nothing about health ever goes in the notice itself."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from app.access.grants import live_grants
from app.clinic import clinic_profile, clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.i18n import N_
from app.services.accounts import account_contacts
from app.services.outbox import Undelivered, outbox_enqueue, outbox_on_undelivered
from app.services.push import push_enqueue
from app.services.self_access import HOLDER_COLUMNS, holder_from, is_minor, self_access_refusal
from app.tables import Account, OutboxMessage, Patient

CHANNELS = ("push", "sms", "email")
# category: (the area of a record it belongs to, where it links, what it says)
CATEGORIES: dict[str, tuple[str | None, str, str]] = {
    "messages": ("messages", "/messages", N_("You have a new message from your care team.")),
    "results": ("results", "/results", N_("You have a new test result.")),
    "appointments": ("appointments", "/visits", N_("You have a visit coming up.")),
    "bills": ("billing", "/more", N_("You have a new bill.")),
    "news": (None, "/home", N_("There is news from your clinic.")),
    # Who can see a record changed: a security notice, always sent (not in the settings).
    "access": (None, "/sharing", N_("There is a change to who can see a portal record.")),
    # "Send me a test notice": by every channel the person chose for anything, at once.
    "test": (
        None,
        "/notifications",
        N_("This is a test notice from the patient portal. Your notices will look like this."),
    ),
}
CONFIGURABLE = tuple(category for category in CATEGORIES if category not in ("access", "test"))
DEFAULTS: dict[str, tuple[str, ...]] = {
    "messages": ("push",),
    "results": ("push",),
    "appointments": ("push", "sms"),
    "bills": ("push",),
    "news": (),
    "access": ("push", "sms"),
    "test": (),
}
OPEN_PORTAL = N_("Open the patient portal to see it.")


@dataclass(frozen=True)
class Preferences:
    channels: dict[str, tuple[str, ...]]
    quiet_start: int | None  # minutes after midnight, clinic time
    quiet_end: int | None

    def wants(self, category: str) -> tuple[str, ...]:
        if category == "test":
            chosen = {c for configurable in CONFIGURABLE for c in self.wants(configurable)}
            return tuple(c for c in CHANNELS if c in chosen)
        return self.channels.get(category, DEFAULTS.get(category, ()))


def preferences_parse(raw: str, quiet_start: int | None, quiet_end: int | None) -> Preferences:
    chosen: dict[str, tuple[str, ...]] = dict(DEFAULTS)
    try:
        stored = json.loads(raw) if raw else {}
    except ValueError:
        stored = {}
    if isinstance(stored, dict):
        for category, channels in stored.items():
            if category in CONFIGURABLE and isinstance(channels, list):
                chosen[category] = tuple(c for c in CHANNELS if c in channels)
    return Preferences(chosen, quiet_start, quiet_end)


def quiet_until(prefs: Preferences, now: datetime) -> datetime | None:
    """The end of the quiet hours when `now` falls inside them (they may cross midnight)."""
    if prefs.quiet_start is None or prefs.quiet_end is None or prefs.quiet_start == prefs.quiet_end:
        return None
    zone = clinic_profile().timezone
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = prefs.quiet_start, prefs.quiet_end
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() if minute < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end // 60, end % 60), tzinfo=zone)


async def preferences_for(account_id: int) -> Preferences:
    row = (
        await Account.select(Account.notify_prefs, Account.quiet_start, Account.quiet_end)
        .where(Account.id == account_id)
        .first()
    )
    if row is None:
        return preferences_parse("", None, None)
    return preferences_parse(row["notify_prefs"], row["quiet_start"], row["quiet_end"])


async def notify_account(
    *,
    account_id: int,
    category: str,
    event: str,
    text: str | None = None,
    url: str | None = None,
) -> list[str]:
    """Queue this account's notice (inside the caller's transaction); the channels used.

    `event` names what happened (e.g. "result-<public id>"): pushes carry it as their tag,
    so the same event shown twice replaces itself. `text` replaces the category's words
    where a notice must say more (never anything about health); `url` replaces the
    category's screen with the exact one (by random public id only)."""
    _area, default_url, default_text = CATEGORIES[category]
    text = text or default_text
    prefs = await preferences_for(account_id)
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
            title=text,
            body=OPEN_PORTAL,
            url=url or default_url,
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
    for channel, recipient in (("sms", phone), ("email", email)):
        if channel in wanted and recipient:
            await outbox_enqueue(
                channel=channel,
                recipient=recipient,
                subject=text,
                body=f"{text} {OPEN_PORTAL}",
                # Texts wait out the quiet hours; an email does not wake anyone.
                not_before=wait if channel == "sms" else None,
                kind=kind,
            )
            used.append(channel)
    return used


async def notify_test(*, account_id: int) -> list[str]:
    """The "Send me a test notice" button: the channels it went by (none when nothing is
    chosen anywhere)."""
    async with write_transaction():
        return await notify_account(account_id=account_id, category="test", event="test")


def _fallback_channel(phone: str | None) -> str:
    """Instead of a push: a text, or an email for someone with no phone on file."""
    return "sms" if phone else "email"


async def _notice_undelivered(notice: Undelivered) -> None:
    """A notice none of whose pushes arrived (the devices are gone): once, by text or email,
    within the same quiet hours."""
    key = f"fallback-{notice.notice}"
    if await OutboxMessage.exists().where(OutboxMessage.idempotency_key == key):
        return
    phone, email = await account_contacts(notice.account_id)
    channel = _fallback_channel(phone)
    recipient = phone if channel == "sms" else email
    if not recipient:
        return
    wait = None
    if channel == "sms" and notice.kind != "notice.test":
        wait = quiet_until(await preferences_for(notice.account_id), utcnow())
    await outbox_enqueue(
        channel=channel,
        recipient=recipient,
        subject=notice.subject,
        body=f"{notice.subject} {OPEN_PORTAL}",
        key=key,
        not_before=wait,
        kind=notice.kind,
    )


outbox_on_undelivered(_notice_undelivered)


async def notify_patient(
    *,
    patient_id: int,
    category: str,
    event: str,
    confidential: bool = False,
    text: str | None = None,
    url: str | None = None,
) -> int:
    """Everyone who follows this record for this kind of news: the patient's own account
    and caregivers whose live grant opens that area, by the grants selector's rules (for a
    confidential item, the patient alone: even "you have a new result" would tell). A
    patient without an account yet gets a text (or email) at the contact on the record,
    except of a confidential item while a guardian looks after the record; a minor hears
    of one only at a contact of their own that no guardian or other adult uses. Returns
    how many people were told."""
    area = CATEGORIES[category][0]
    today = clinic_today()
    grants = await live_grants(patient_id=patient_id)
    accounts = sorted(
        {grant.account_id for grant in grants if grant.may_hear_of(area, confidential, today)}
    )
    for account_id in accounts:
        await notify_account(
            account_id=account_id, category=category, event=event, text=text, url=url
        )
    if accounts:
        return len(accounts)
    if confidential and any(grant.is_clinic_given_guardian for grant in grants):
        return 0  # a minor's record may carry a guardian's phone or email
    row = await Patient.select(*HOLDER_COLUMNS).where(Patient.id == patient_id).first()
    if row is None:
        return 0
    holder = holder_from(row)
    contacts = [("sms", holder.phone), ("email", holder.email)]
    if confidential and is_minor(holder.birth_date):
        # A minor's record usually carries a parent's phone or email, often before any
        # guardian has access: only a contact marked as the teenager's own, which no
        # guardian (with access or invited) and no other adult uses, may hear of it.
        contacts = [
            (channel, recipient)
            for channel, recipient in contacts
            if recipient and await self_access_refusal(holder, channel) is None
        ]
    found = next(((channel, value) for channel, value in contacts if value), None)
    if found is None:
        return 0
    channel, recipient = found
    text = text or CATEGORIES[category][2]
    await outbox_enqueue(
        channel=channel,
        recipient=recipient,
        subject=text,
        body=f"{text} {OPEN_PORTAL}",
        kind=f"notice.{category}",
    )
    return 1


async def preferences_save(
    *, account_id: int, channels: dict[str, tuple[str, ...]], quiet: tuple[int, int] | None
) -> None:
    stored = {
        category: [c for c in CHANNELS if c in channels.get(category, ())]
        for category in CONFIGURABLE
    }
    await Account.update(
        {
            Account.notify_prefs: json.dumps(stored),
            Account.quiet_start: quiet[0] if quiet else None,
            Account.quiet_end: quiet[1] if quiet else None,
        }
    ).where(Account.id == account_id)
