"""Which phone numbers the clinic may text when a person types one in.

Texts cost the clinic money, and more for numbers abroad or at premium rates: someone able
to make the clinic text any number could run up its bill ("SMS pumping") or send spam from
its number. So a number someone types (a caregiver's, say) must be a valid number in one of
the countries the clinic serves (`PORTAL_SMS_COUNTRIES`), and a mobile one: not premium-rate,
toll-free, shared-cost, personal or pager numbers, nor a landline, which cannot take a text
(a caregiver with only a landline is invited by email). `phonenumbers`, a port of
Google's libphonenumber, knows each country's numbering plan: a +1 number may be in the
United States, Canada or one of many Caribbean countries, which its digits alone do not say.
"""

from __future__ import annotations

import re

import phonenumbers
from babel import Locale

from app.i18n import current_locale

E164 = re.compile(r"\+[1-9]\d{6,14}")


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


# Numbers that take a text: where a country's plan does not tell mobiles from landlines
# (the United States, Canada), libphonenumber says FIXED_LINE_OR_MOBILE.
TEXTABLE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def phone_refusal(e164: str, countries: tuple[str, ...]) -> str | None:
    """Why the clinic may not text this number: `contact` (not a valid number), `country`
    (outside the countries it serves), `phone_type` (not a mobile number); None if it may."""
    region = phone_region(e164)
    if region is None:
        return "contact"
    if region not in countries:
        return "country"
    if phonenumbers.number_type(phonenumbers.parse(e164, None)) not in TEXTABLE:
        return "phone_type"
    return None


def phone_allowed(e164: str, countries: tuple[str, ...]) -> bool:
    return phone_refusal(e164, countries) is None


def phone_display(number: str) -> str:
    """A phone number as people read it: "(555) 286-0706" for a North American (+1) number,
    the clinics' own plan; "+44 7911 123456" for one abroad. The data keeps E.164, which
    reads as one long run of digits. Anything not in E.164 (a number typed some other way,
    an email, a half number) is shown as it is: what was typed serves better than a guess."""
    if not E164.fullmatch(number):
        return number
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    shown: str = phonenumbers.format_number(parsed, style)
    return shown


def country_names(countries: tuple[str, ...]) -> str:
    """The countries' names in the reader's language, for "we can text numbers in ..."."""
    territories = Locale.parse(current_locale()).territories
    return ", ".join(territories.get(code, code) for code in countries)
