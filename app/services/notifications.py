"""What each person chose to be told about, and how: a channel per kind of notice (push, text,
email) and quiet hours, in the clinic's time, when pushes and texts wait. The notices
themselves go out through app/notices/delivery.py, which reads these choices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from app.clinic import clinic_profile
from app.tables import Account

CHANNELS = ("push", "sms", "email")
# Kinds of notice. "access" (who can see a record changed) is a security notice, always sent
# and not in the settings; "test" is "Send me a test notice": by every channel the person
# chose for anything, at once.
CATEGORIES = ("messages", "results", "appointments", "bills", "news", "access", "test")
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


@dataclass(frozen=True)
class Preferences:
    channels: dict[str, tuple[str, ...]]
    quiet_start: int | None  # minutes after midnight, clinic time
    quiet_end: int | None
    locale: str | None = None  # the account's language, if it chose one

    def wants(self, category: str) -> tuple[str, ...]:
        if category == "test":
            chosen = {c for configurable in CONFIGURABLE for c in self.wants(configurable)}
            return tuple(c for c in CHANNELS if c in chosen)
        return self.channels.get(category, DEFAULTS.get(category, ()))


def preferences_parse(
    raw: str, quiet_start: int | None, quiet_end: int | None, locale: str | None = None
) -> Preferences:
    chosen: dict[str, tuple[str, ...]] = dict(DEFAULTS)
    try:
        stored = json.loads(raw) if raw else {}
    except ValueError:
        stored = {}
    if isinstance(stored, dict):
        for category, channels in stored.items():
            if category in CONFIGURABLE and isinstance(channels, list):
                chosen[category] = tuple(c for c in CHANNELS if c in channels)
    return Preferences(chosen, quiet_start, quiet_end, locale)


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
        await Account.select(
            Account.notify_prefs, Account.quiet_start, Account.quiet_end, Account.locale
        )
        .where(Account.id == account_id)
        .first()
    )
    if row is None:
        return preferences_parse("", None, None)
    return preferences_parse(
        row["notify_prefs"], row["quiet_start"], row["quiet_end"], row["locale"]
    )


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
