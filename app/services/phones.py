"""Which phone numbers the clinic may text when a person types one in.

Texts cost the clinic money, and more for numbers abroad or at premium rates: someone able
to make the clinic text any number could run up its bill ("SMS pumping") or send spam from
its number. So a number someone types (a caregiver's, say) must be a valid number in one of
the countries the clinic serves (`PORTAL_SMS_COUNTRIES`). `phonenumbers`, a port of
Google's libphonenumber, knows each country's numbering plan: a +1 number may be in the
United States, Canada or one of many Caribbean countries, which its digits alone do not say.
"""

from __future__ import annotations

import phonenumbers
from babel import Locale

from app.i18n import current_locale


def phone_region(e164: str) -> str | None:
    """The ISO country code of a valid number in E.164 form (e.g. "US"), else None."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    region: str | None = phonenumbers.region_code_for_number(number)
    return region


def phone_allowed(e164: str, countries: tuple[str, ...]) -> bool:
    return phone_region(e164) in countries


def country_names(countries: tuple[str, ...]) -> str:
    """The countries' names in the reader's language, for "we can text numbers in ..."."""
    territories = Locale.parse(current_locale()).territories
    return ", ".join(territories.get(code, code) for code in countries)
