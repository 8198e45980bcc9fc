"""Filters and macros the templates share."""

from __future__ import annotations

from typing import Any

from app.templating import _tel, build_environment


def test_a_phone_number_dials_with_its_digits_only() -> None:
    assert _tel("(555) 010-0100") == "tel:5550100100"
    assert _tel(" +1 555 010 0100 ") == "tel:+15550100100"


def test_a_long_wait_on_the_dashboard_reads_in_hours() -> None:
    module: Any = build_environment().get_template("console/_figures.html").module
    assert str(module.shown("minutes", 95)) == "95 minutes"
    assert str(module.shown("minutes", 1032)) == "17 hours"
    assert str(module.change("minutes", -150)) == "-2 hours from last month"
    assert str(module.change("minutes", 30)) == "+30 minutes from last month"


def _render(source: str, locale: str = "en", **context: Any) -> str:
    from app.i18n import set_locale

    set_locale(locale)
    try:
        return build_environment().from_string(source).render(**context)
    finally:
        set_locale("en")


def test_template_translations_behave_as_jinjas_newstyle_gettext() -> None:
    # Variables are escaped, "%%" reads "%" with or without variables, and `_` is gettext.
    assert _render('{{ _("Hello, %(name)s", name=who) }}', who="<b>") == "Hello, &lt;b&gt;"
    assert _render('{{ _("Print at 100%% (actual size).") }}') == "Print at 100% (actual size)."
    assert _render('{{ gettext("Home") }} {{ _("Home") }}', "es") == "Inicio Inicio"
    assert _render('{{ _("Hello, %(name)s", name="Ana") }}', "es") == "Hola, Ana"
    assert _render('{{ ngettext("%(num)d new", "%(num)d new", 2) }}') == "2 new"
    # A text shown twice is the same both times (kept formatted once), in each language.
    assert _render('{{ _("Home") }}|{{ _("Home") }}', "es") == "Inicio|Inicio"
    assert _render('{{ _("Home") }}') == "Home"
    # Without autoescaping, as Jinja's: plain text, variables as they are.
    raw = '{% autoescape false %}{{ _("Hello, %(name)s", name=who) }}{% endautoescape %}'
    assert _render(raw, who="<b>") == "Hello, <b>"


def test_templates_see_globals_set_after_they_were_loaded() -> None:
    # Templates read the environment's globals themselves (no per-template copy): a global
    # set later (the clinic, at start-up) shows; globals given to one template stay its own.
    env = build_environment()
    template = env.from_string("{{ where }}")
    env.globals["where"] = "Main Street"
    assert template.render() == "Main Street"
    own = env.from_string("{{ where }}", globals={"where": "Elm Street"})
    assert own.render() == "Elm Street"
    assert env.from_string("{{ where }}").render() == "Main Street"
