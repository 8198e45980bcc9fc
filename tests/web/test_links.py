"""Links and redirects go by route name: no template or handler spells an internal path, and
every name a template asks `url_for` for is a route the app has (demo routes included)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from app.main import create_app
from app.settings import Settings
from app.templating import TEMPLATES_DIR

APP_DIR = Path(__file__).resolve().parents[2] / "app"
# A quoted path in a template: href="/x", action='/x/{{ id }}', "/x" in an expression. (An
# SVG's self-closing "/>" has no closing quote before a ">".)
_QUOTED_PATH = re.compile(r"""["'](/[^"'<>\n]*)["']""")
_URL_FOR = re.compile(r"url_for\(([^()]*)\)")
_NAME = re.compile(r"""["']([a-z_]+)["']""")
# A redirect or a JSON answer's "redirect" that names a path itself.
_PATH_REDIRECT = re.compile(r"""(Redirect\(\s*f?["']/|["']redirect["']\s*:\s*f?["']/)""")


def _templates() -> list[Path]:
    return [path for path in TEMPLATES_DIR.rglob("*") if path.is_file()]


def test_no_template_spells_an_internal_path() -> None:
    found = {
        f"{path.relative_to(TEMPLATES_DIR)}: {match}"
        for path in _templates()
        for match in _QUOTED_PATH.findall(path.read_text(encoding="utf-8"))
    }
    assert found == set(), "use url_for(...) (or asset_url for static files)"


def test_no_redirect_spells_an_internal_path() -> None:
    sources = [*(APP_DIR / "handlers").rglob("*.py"), *(APP_DIR / "web").rglob("*.py")]
    found = {
        f"{path.relative_to(APP_DIR)}: {match}"
        for path in sources
        for match in _PATH_REDIRECT.findall(path.read_text(encoding="utf-8"))
    }
    assert found == set(), "use redirect_to(request, name) or url(request, name)"


# What a redirect may put in the address: which page it is (a filter, a page of a list), never
# what just happened (that is a flashed notice, app/web/flash.py).
_PAGE_STATE_KEYS = {"show", "page", "view", "q", "next", "day", "clinician", "location", "topic"}
_REDIRECT_QUERY = re.compile(r"redirect_to\((?:[^()]|\([^()]*\))*?query=\{([^}]*)\}", re.S)
_QUERY_KEY = re.compile(r"""["']([a-z_]+)["']\s*:""")


def test_no_redirect_says_what_happened_in_the_address() -> None:
    sources = [*(APP_DIR / "handlers").rglob("*.py"), *(APP_DIR / "web").rglob("*.py")]
    keys = {
        f"{path.relative_to(APP_DIR)}: {key}"
        for path in sources
        for query in _REDIRECT_QUERY.findall(path.read_text(encoding="utf-8"))
        for key in _QUERY_KEY.findall(query)
    }
    said = {entry for entry in keys if entry.rsplit(": ", 1)[1] not in _PAGE_STATE_KEYS}
    assert said == set(), "flash a notice instead: redirect_to(request, name, notice=key)"
    assert any(entry.endswith(": page") for entry in keys)  # the scan sees real redirects


def test_every_name_a_template_links_to_is_a_route(settings: Settings) -> None:
    app = create_app(replace(settings, demo=True))
    asked = {
        (path.relative_to(TEMPLATES_DIR).as_posix(), name)
        for path in _templates()
        for call in _URL_FOR.findall(path.read_text(encoding="utf-8"))
        for name in _NAME.findall(call)
    }
    assert len(asked) > 50
    unknown = {
        (where, name) for where, name in asked if app.get_handler_index_by_name(name) is None
    }
    assert unknown == set()


def test_templates_link_as_litestar_does(settings: Settings) -> None:
    # Templates' url_for keeps a route's address once it was asked for without parameters;
    # it must be the address Litestar gives, for every route, and each app keeps its own.
    app = create_app(replace(settings, demo=True))
    url_for = app.template_engine.engine.globals["url_for"]
    names = [name for name in app.asgi_router.route_handler_index if "{" not in name]
    plain = [
        name
        for name in names
        if not any(route.path_parameters for route in app.asgi_router.route_mapping[name])
    ]
    assert len(plain) > 50
    for _ in range(2):  # asked again: from what was kept
        assert {name: url_for(name) for name in plain} == {
            name: app.route_reverse(name) for name in plain
        }
    assert url_for("visit", visit_id="v1") == app.route_reverse("visit", visit_id="v1")
    other = create_app(replace(settings, demo=False))
    assert other.template_engine.engine.globals["url_for"] is not url_for
