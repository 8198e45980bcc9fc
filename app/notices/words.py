"""How a message is worded: per channel, in the reader's language, and texts kept short.

Each message is written once, as a Message: its subject and text in N_ strings. Rendered
with `_` (gettext for one language) it gives its Wording: the text message, the email's
subject and body, and a push's title and body. The reader's language is their account's
choice, else the clinic's default. A text message is sent in the GSM-7 alphabet where it can
be (an accent GSM-7 lacks is dropped: "código" goes as "codigo"), so that two segments hold
306 characters, not 134.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from app.clinic import clinic_profile
from app.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, translations_for
from app.tables import AccessGrant, Account

# gettext in one language; a message's wording is written against it.
Say = Callable[[str], str]


@dataclass(frozen=True)
class Wording:
    """One message in one language, as each channel carries it."""

    sms: str
    email_subject: str
    email_body: str
    push_title: str = ""
    push_body: str = ""


# Every message, by name: the tests render each one in every language.
MESSAGES: dict[str, Message] = {}


@dataclass(frozen=True)
class Message:
    """A message as written: N_ strings with %(name)s values, the clinic's name always among
    them. With a `text`, a text or an email that says it under `subject`; without, a notice
    whose headline is `subject` (notice_words)."""

    name: str
    subject: str
    text: str | None = None

    def __post_init__(self) -> None:
        MESSAGES[self.name] = self

    def words(self, _: Say, **values: str) -> Wording:
        """The message in the language of `_`, with its values filled in."""
        values = {"clinic": clinic_profile().name, **values}
        if self.text is None:
            return notice_words(_, _(self.subject) % values)
        return same_words(subject=_(self.subject) % values, text=_(self.text) % values)


def same_words(*, subject: str, text: str) -> Wording:
    """A message that says the same by text and by email (the subject names it)."""
    return Wording(sms=text, email_subject=subject, email_body=text)


def notice_words(_: Say, headline: str) -> Wording:
    """A notice: what is new, and where to see it. Never anything about health."""
    open_portal = _("Open the patient portal to see it.")
    text = f"{headline} {open_portal}"
    return Wording(
        sms=text,
        email_subject=headline,
        email_body=text,
        push_title=headline,
        push_body=open_portal,
    )


def clinic_locale() -> str:
    """The language of a message to someone whose account has not chosen one."""
    return DEFAULT_LOCALE


def say_in(locale: str | None) -> Say:
    chosen = locale if locale in SUPPORTED_LOCALES else clinic_locale()
    return translations_for(chosen).ugettext


async def account_locale(account_id: int | None) -> str | None:
    """The language this account chose, if it chose one."""
    if account_id is None:
        return None
    row = await Account.select(Account.locale).where(Account.id == account_id).first()
    return row["locale"] if row else None


async def record_locale(patient_id: int) -> str | None:
    """The language chosen by the account that holds this record's own access, if any."""
    row = (
        await AccessGrant.select(AccessGrant.account.locale)
        .where(
            AccessGrant.patient == patient_id,
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
        )
        .first()
    )
    return row["account.locale"] if row else None


# GSM 03.38: the default alphabet, and the extension table whose characters take two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
# Typography a translator may use that GSM-7 spells plainly.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",  # quotation marks
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",  # dashes
        "\u2014": "-",
        "\u00a0": " ",  # a no-break space
    }
)


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def sms_text(text: str) -> str:
    """The text as sent: in GSM-7 when dropping the accents it lacks gets it there; else as
    written (a name in another script goes as UCS-2 anyway, so its accents stay)."""
    if is_gsm7(text):
        return text
    folded = []
    for char in text.translate(_PLAIN):
        if char in GSM7_BASIC or char in GSM7_EXTENDED:
            folded.append(char)
            continue
        base = "".join(
            part for part in unicodedata.normalize("NFD", char) if not unicodedata.combining(part)
        )
        folded.append(base)
    plain = "".join(folded)
    return plain if is_gsm7(plain) else text


def sms_segments(text: str) -> int:
    """How many segments a text message takes: 160 GSM-7 septets alone or 153 a part when
    split; 70 UCS-2 code units alone or 67 a part."""
    if is_gsm7(text):
        septets = sum(2 if char in GSM7_EXTENDED else 1 for char in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
