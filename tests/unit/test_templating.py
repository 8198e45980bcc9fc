"""Filters and macros the templates share."""

from __future__ import annotations

from typing import Any

from app.main import create_app
from app.templating import TEMPLATES_DIR, _tel, build_environment


def test_a_phone_number_dials_with_its_digits_only() -> None:
    assert _tel("(555) 010-0100") == "tel:5550100100"
    assert _tel(" +1 555 010 0100 ") == "tel:+15550100100"


def test_a_phone_number_reads_as_people_write_it() -> None:
    shown = build_environment().filters["phone"]
    assert shown("+15552860706") == "(555) 286-0706"  # North American: the clinics' own
    assert shown("+14165550123") == "(416) 555-0123"
    assert shown("+447911123456") == "+44 7911 123456"  # abroad: with its country code
    assert shown("+525512345678") == "+52 55 1234 5678"
    # Not E.164: shown as it was typed, never guessed at.
    for kept in ["(555) 010-0100", "+1 555 010 0100", "+1555", "ana@mail.test", ""]:
        assert shown(kept) == kept


def test_a_phone_link_dials_e164_and_reads_formatted() -> None:
    module: Any = build_environment().get_template("components/ui.html").module
    assert str(module.phone_link("+15552860706")) == (
        '<a href="tel:+15552860706">(555) 286-0706</a>'
    )


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


# Macros a template imports without its context are built once and shared by every render,
# in a context of the environment's globals alone: no request, no page variables. One that
# needs either must be imported `with context` (built again on each render), or it would
# quietly read nothing (a notice_about() that is always false).
_GLOBALS_WITHOUT_A_PAGE = {
    # Translations and the CSRF token answer without the page's context (app/templating.py).
    "_",
    "gettext",
    "ngettext",
    "pgettext",
    "csrf_token",
}
_JINJA_NAMES = {"loop", "caller", "varargs", "kwargs", "true", "false", "none"}


def _needs_the_page(env: Any, template: str, macro: str, seen: frozenset[tuple[str, str]]) -> str:
    """What in this macro (or a macro it calls) needs the page's context; "" for nothing."""
    from jinja2 import nodes

    source = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    tree = env.parse(source, template)
    macros = {found.name: found for found in tree.find_all(nodes.Macro)}
    imported = {
        (name[1] if isinstance(name, tuple) else name): (
            node.template.value,
            name[0] if isinstance(name, tuple) else name,
        )
        for node in tree.find_all(nodes.FromImport)
        for name in node.names
    }
    body = macros[macro]
    own = {arg.name for arg in body.args} | {
        name.name for name in body.find_all(nodes.Name) if name.ctx in ("store", "param")
    }
    used = {name.name for name in body.find_all(nodes.Name) if name.ctx == "load"} - own
    for name in sorted(used - _JINJA_NAMES):
        if name in macros and (template, name) not in seen:
            why = _needs_the_page(env, template, name, seen | {(template, macro)})
        elif name in imported and imported[name] not in seen:
            why = _needs_the_page(env, *imported[name], seen | {(template, macro)})
        elif name in env.globals:
            bound = getattr(env.globals[name], "jinja_pass_arg", None) is not None
            why = name if bound and name not in _GLOBALS_WITHOUT_A_PAGE else ""
            why = why or (name if name == "clinic" else "")  # set again at start-up
        elif name in macros or name in imported:
            why = ""
        else:
            why = name  # a page variable (ctx, request, errors...)
        if why:
            return f"{template}:{macro} uses {why}"
    return ""


def test_macros_imported_without_context_need_nothing_from_the_page() -> None:
    import re

    env = create_app().template_engine.engine  # type: ignore[union-attr]
    imports = re.compile(r'{%-? from "([^"]+)" import ([^%]+?) -?%}')
    checked, wrong = 0, []
    for path in sorted(TEMPLATES_DIR.rglob("*.html")):
        for template, names in imports.findall(path.read_text(encoding="utf-8")):
            if names.rstrip().endswith("with context"):
                continue
            for name in (part.strip() for part in names.split(",")):
                checked += 1
                why = _needs_the_page(env, template, name.split(" as ")[0], frozenset())
                if why:
                    wrong.append(f"{path.relative_to(TEMPLATES_DIR)} imports {name}: {why}")
    assert checked > 50
    assert wrong == [], "import these `with context`"
