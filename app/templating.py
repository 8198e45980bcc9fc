"""The Jinja environment: autoescaping, gettext, and formatters in the clinic's time zone."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from app import i18n
from app.assets import asset_url, inline_start_script, inline_stylesheet, page_scripts
from app.clinic import ClinicProfile, clinic_profile, clinic_profile_set
from app.clock import utcnow
from app.services.console.posters import Poster
from app.services.console.roles import ROLE_LABELS
from app.services.passkeys import device_name
from app.settings import get_settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
POSTER_TEMPLATE = "console/poster.svg"


def build_environment(*, auto_reload: bool = False) -> Environment:
    """`auto_reload` (PORTAL_DEBUG): look for a changed template file on every render. Off,
    each template is read and compiled once per process."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=auto_reload,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, pgettext=i18n.pgettext, newstyle=True
    )
    env.globals.update(
        asset_url=asset_url,
        current_locale=i18n.current_locale,
        language_names=i18n.LANGUAGE_NAMES,
        clinic=clinic_profile(),
        # Our own files, inserted as they are: escaping would change the text the CSP hash allows.
        inline_css=Markup(inline_stylesheet()),  # noqa: S704
        inline_js=Markup(inline_start_script()),  # noqa: S704
        page_scripts=page_scripts(),
        device_label=device_name,
        role_label=_role_label,
    )
    env.filters.update(
        day=_day,
        moment=_moment,
        clock=_clock,
        number=_number,
        unit=_unit,
        days_away=_days_away,
        money=_money,
        tel=_tel,
    )
    return env


def _tel(phone: str) -> str:
    """A phone number as a link a phone can dial: "tel:" and only its digits (and a leading +)."""
    return "tel:" + re.sub(r"(?!^\+)[^\d]", "", phone.strip())


def _money(cents: int) -> str:
    """An amount of money in cents, as the page's language writes it ("$1,234.50")."""
    currency = get_settings().currency.upper()
    return format_currency(cents / 100, currency, locale=i18n.current_locale())


def set_clinic_profile(env: Environment, profile: ClinicProfile) -> None:
    """The clinic shown on every page, and whose time zone dates are shown in."""
    clinic_profile_set(profile)
    env.globals["clinic"] = profile


def current_clinic() -> ClinicProfile:
    return clinic_profile()


def poster_svg(poster: Poster) -> str:
    """A clinic poster as a complete SVG document, to print at actual size."""
    return _poster_environment().get_template(POSTER_TEMPLATE).render(poster=poster)


@cache
def _poster_environment() -> Environment:
    # Its own environment (autoescaping included): the page one changes with each clinic.
    return build_environment()


def _role_label(code: str) -> str:
    return i18n.gettext(ROLE_LABELS[code]) if code in ROLE_LABELS else code


def _zone(name: str | None) -> ZoneInfo:
    """A place's own time zone (a visit is at its location's time), else the clinic's."""
    return ZoneInfo(name) if name else clinic_profile().timezone


def _day(value: date | datetime, style: str = "medium", zone: str | None = None) -> str:
    return i18n.format_day(value, _zone(zone), style)


def _moment(value: datetime, style: str = "short", zone: str | None = None) -> str:
    return i18n.format_moment(value, _zone(zone), style)


def _clock(value: datetime, zone: str | None = None) -> str:
    return i18n.format_clock(value, _zone(zone))


def _days_away(value: datetime) -> int:
    """How many days from today (the clinic's) a moment falls: 0 today, 1 tomorrow."""
    zone = clinic_profile().timezone
    return (value.astimezone(zone).date() - utcnow().astimezone(zone).date()).days


# UCUM codes as people read them.
_TIMES = "\u00d7"  # the multiplication sign
_UNITS = {
    "10*3/uL": f"{_TIMES}10³/µL",
    "10*6/uL": f"{_TIMES}10⁶/µL",
    "10*9/L": f"{_TIMES}10⁹/L",
    "uL": "µL",
}


def _unit(code: str) -> str:
    return _UNITS.get(code, code.replace("uL", "µL").replace("ug", "µg"))


def _number(value: float | None) -> str:
    """A lab value as people write it: no trailing .0 on whole numbers."""
    return "" if value is None else f"{value:g}"
