"""Translations: gettext catalogs compiled in memory from app/locales/*.po at start-up.

The locale for a request is the account's choice, then a language cookie, then the browser's
Accept-Language, then the default. A context variable carries it to templates and formatters.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import date, datetime, tzinfo
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
DEFAULT_LOCALE = "en"

_current_locale: ContextVar[str] = ContextVar("portal_locale", default=DEFAULT_LOCALE)


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations_for(locale: str) -> NullTranslations:
    po_path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(fp=compiled)


@cache
def babel_locale(locale: str) -> Locale:
    """Babel's Locale for a language, parsed once: Babel's formatters parse a name again on
    every call (two or three times for a date with its time)."""
    return Locale.parse(locale)


def set_locale(locale: str) -> None:
    _current_locale.set(locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE)


def current_locale() -> str:
    return _current_locale.get()


def gettext(message: str) -> str:
    return translations_for(current_locale()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(current_locale()).ungettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations_for(current_locale()).upgettext(context, message)


def negotiate_locale(
    *, account_choice: str | None, cookie_choice: str | None, accept_language: str | None
) -> str:
    for choice in (account_choice, cookie_choice):
        if choice in SUPPORTED_LOCALES:
            return choice
    if accept_language:
        preferred = _parse_accept_language(accept_language)
        found = Locale.negotiate(preferred, list(SUPPORTED_LOCALES), sep="-")
        if found is not None:
            return found.language
    return DEFAULT_LOCALE


def _parse_accept_language(header: str) -> list[str]:
    """`es-MX,es;q=0.9,en;q=0.5` -> ['es-MX', 'es', 'en'], best first."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def format_day(value: date | datetime, zone: tzinfo, style: str = "medium") -> str:
    """A date; style "weekday" is a short day with its weekday, e.g. 'Tue, Mar 3'."""
    if isinstance(value, datetime):
        value = value.astimezone(zone).date()
    locale = babel_locale(current_locale())
    if style == "weekday":
        return format_skeleton("MMMEd", value, locale=locale)
    return format_date(value, format=style, locale=locale)


def format_moment(value: datetime, zone: tzinfo, style: str = "medium") -> str:
    """A date and time in the clinic's zone, e.g. 'Tue, Mar 3, 9:30 AM'."""
    local = value.astimezone(zone)
    locale = babel_locale(current_locale())
    if style == "short":
        day = format_skeleton("MMMEd", local, tzinfo=zone, locale=locale)
        return f"{day}, {format_time(local, format='short', tzinfo=zone, locale=locale)}"
    return format_datetime(local, format=style, tzinfo=zone, locale=locale)


def format_clock(value: datetime, zone: tzinfo) -> str:
    locale = babel_locale(current_locale())
    return format_time(value.astimezone(zone), format="short", tzinfo=zone, locale=locale)
