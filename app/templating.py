"""The Jinja environment: autoescaping, gettext, and formatters in the clinic's time zone."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from litestar import Litestar
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from app import i18n
from app.assets import asset_url, inline_start_script, inline_stylesheet, page_scripts
from app.clinic import ClinicProfile, clinic_profile, clinic_profile_set
from app.clock import utcnow
from app.security import shown_csrf_token
from app.services.console.posters import Poster
from app.services.console.roles import ROLE_LABELS
from app.services.passkeys import device_name
from app.services.phones import phone_display
from app.settings import get_settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
POSTER_TEMPLATE = "console/poster.svg"


class PortalEnvironment(Environment):
    """Jinja's Environment, with templates reading the environment's globals directly.

    Jinja gives each template a ChainMap over its own globals and the environment's, then
    copies it key by key in Python into every render's, include's and macro import's
    context (and makes a set of its keys), some 30 names each time. Templates here have no
    globals of their own (nothing passes `globals=` to get_template or from_string), so the
    environment's dict serves: copied by C, and still live (the clinic set at start-up)."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return super().make_globals(d) if d else self.globals


def build_environment(*, auto_reload: bool = False) -> Environment:
    """`auto_reload` (PORTAL_DEBUG): look for a changed template file on every render. Off,
    each template is read and compiled once per process."""
    env = PortalEnvironment(
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
    # The same callables, without Jinja's per-call lookups (below).
    env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext, pgettext=_pgettext)
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
        phone=phone_display,
    )
    return env


# Translations in templates ----------------------------------------------------------------
#
# What Jinja's newstyle gettext does (look the text up, make it Markup, then always format it
# with `%`, so "%%" reads "%" and variables are escaped), without its cost on every call: `_`
# resolved and called through the context twice, a new Markup, a format. A page calls `_`
# 20 to 60 times. A text's translation, as Markup, is made once per language; a text without
# variables is kept formatted. Bounded caches: a template could pass a text from data.


@lru_cache(maxsize=4096)
def _translated(locale: str, message: str) -> Markup:
    return Markup(i18n.translations_for(locale).ugettext(message))  # noqa: S704 (escaped: %)


@lru_cache(maxsize=4096)
def _translated_alone(locale: str, message: str) -> Markup:
    return _translated(locale, message) % {}


@pass_context
def _gettext(context: Context, message: str, /, **variables: Any) -> str:
    if not context.eval_ctx.autoescape:
        return i18n.gettext(message) % variables
    if not variables:
        return _translated_alone(i18n.current_locale(), message)
    return _translated(i18n.current_locale(), message) % variables


@pass_context
def _ngettext(context: Context, singular: str, plural: str, num: int, /, **variables: Any) -> str:
    variables.setdefault("num", num)
    text = i18n.ngettext(singular, plural, num)
    return (Markup(text) if context.eval_ctx.autoescape else text) % variables  # noqa: S704


@pass_context
def _pgettext(context: Context, string_ctx: str, message: str, /, **variables: Any) -> str:
    variables.setdefault("context", string_ctx)
    text = i18n.pgettext(string_ctx, message)
    return (Markup(text) if context.eval_ctx.autoescape else text) % variables  # noqa: S704


def app_callables(env: Environment, app: Litestar) -> None:
    """Templates' `url_for` and `csrf_token`, in place of Litestar's (which its engine puts
    in the environment), giving the same answers for less.

    `url_for`: a route without parameters (the tabs, the sign-out, a form's action: most of a
    page's links) is looked up once per app rather than on every link of every page, where
    Litestar finds the handler and sorts its routes each time.
    `csrf_token`: also answers in a macro imported without the page's context (the form
    field every form uses), so that such a file is built once, not on every render."""
    links: dict[str, str] = {}

    def url_for(route_name: str, **path_parameters: Any) -> str:
        if path_parameters:
            return app.route_reverse(route_name, **path_parameters)
        link = links.get(route_name)
        if link is None:
            link = links[route_name] = app.route_reverse(route_name)
        return link

    env.globals["url_for"] = url_for
    env.globals["csrf_token"] = _csrf_token


@pass_context
def _csrf_token(context: Context) -> str:
    """A page reads its request's state, as Litestar's csrf_token does; a macro imported
    without the page's context has no request, and reads the same token that the CSRF
    middleware put aside for the request being answered (security.py)."""
    request = context.get("request")
    if request is None:
        return shown_csrf_token()
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def _tel(phone: str) -> str:
    """A phone number as a link a phone can dial: "tel:" and only its digits (and a leading +).
    Its text on the page goes through `phone` (phone_display): the same number, for reading."""
    return "tel:" + re.sub(r"(?!^\+)[^\d]", "", phone.strip())


def _money(cents: int) -> str:
    """An amount of money in cents, as the page's language writes it ("$1,234.50")."""
    currency = get_settings().currency.upper()
    return format_currency(cents / 100, currency, locale=i18n.babel_locale(i18n.current_locale()))


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
