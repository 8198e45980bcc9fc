"""Every string is translatable, and the Spanish catalog is complete for what exists."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app import i18n

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("app/**.py", "python"), ("app/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(ROOT),
        METHODS,
        keywords=KEYWORDS,
        options_map={"app/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_spanish_has_a_translation_for_every_string_in_the_app() -> None:
    with (i18n.LOCALES_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="es")
    extracted = _extracted()
    assert len(extracted) > 50
    missing, fuzzy, wrong_placeholders = [], [], []
    for message_id in extracted:
        key = message_id if isinstance(message_id, str) else message_id[0]
        entry = catalog.get(key)
        if (
            entry is None
            or not entry.string
            or not all(entry.string if isinstance(entry.string, tuple) else [entry.string])
        ):
            missing.append(key)
            continue
        if entry.fuzzy:
            fuzzy.append(key)
        translations = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if any(set(PLACEHOLDER.findall(t)) != set(PLACEHOLDER.findall(key)) for t in translations):
            wrong_placeholders.append(key)
    assert missing == []
    assert fuzzy == []
    assert wrong_placeholders == []


def test_locale_follows_account_then_cookie_then_browser() -> None:
    negotiate = i18n.negotiate_locale
    assert negotiate(account_choice="es", cookie_choice="en", accept_language="en") == "es"
    assert negotiate(account_choice=None, cookie_choice="es", accept_language="en") == "es"
    assert (
        negotiate(account_choice=None, cookie_choice=None, accept_language="es-MX,en;q=0.5") == "es"
    )
    assert (
        negotiate(account_choice=None, cookie_choice=None, accept_language="en;q=0.2,es;q=0.9")
        == "es"
    )
    assert negotiate(account_choice=None, cookie_choice=None, accept_language="fr-FR,de") == "en"
    assert negotiate(account_choice="xx", cookie_choice=None, accept_language=None) == "en"


def test_plural_forms_follow_spanish_rules() -> None:
    i18n.set_locale("es")
    try:
        one = i18n.ngettext("%(num)d new", "%(num)d new", 1) % {"num": 1}
        two = i18n.ngettext("%(num)d new", "%(num)d new", 2) % {"num": 2}
    finally:
        i18n.set_locale("en")
    assert (one, two) == ("1 nuevo", "2 nuevos")
