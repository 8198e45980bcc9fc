"""The shape of the web layer: README's area map names files that exist and every area's
handler, each area module exposes one router, and every console route but signing in carries
its role permission as a guard. (That no handler module imports another is
tests/unit/test_layers.py's.)"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path

from litestar import Router
from litestar.routes import HTTPRoute

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "app" / "handlers"
# Shared by every area, not areas themselves.
SHARED = {"__init__.py", "support.py", "errors.py"}
CONSOLE_SIGN_IN = {
    "staff_sign_in_page",
    "staff_sign_in_options",
    "staff_sign_in",
    "staff_enroll_page",
    "staff_enroll_options",
    "staff_enroll",
    "staff_sign_out",
}


def _area_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### The area map")
    return readme[start : readme.index("\n### ", start + 1)]


def _named_files(text: str) -> set[str]:
    return {
        name
        for name in re.findall(r"`([^`\s]+)`", text)
        if name.startswith(("app/", "tests/", "e2e/"))
    }


def _area_modules() -> list[str]:
    modules = [f"app.handlers.{path.stem}" for path in HANDLERS.glob("*.py")]
    modules += [f"app.handlers.console.{path.stem}" for path in (HANDLERS / "console").glob("*.py")]
    return sorted(m for m in modules if f"{m.rsplit('.', 1)[1]}.py" not in SHARED)


def test_every_file_the_area_map_names_exists() -> None:
    named = _named_files(_area_map())
    assert len(named) > 60
    missing = sorted(name for name in named if not (ROOT / name.split(" ")[0]).exists())
    assert missing == []


def test_every_area_handler_is_on_the_map() -> None:
    named = _named_files(_area_map())
    for module in _area_modules():
        path = module.replace(".", "/") + ".py"
        assert path in named, f"{path} is not on README's area map"


def test_each_area_module_exposes_one_router() -> None:
    for module in _area_modules():
        routers = [
            value
            for value in vars(importlib.import_module(module)).values()
            if isinstance(value, Router)
        ]
        assert routers, module
        assert isinstance(importlib.import_module(module).router, Router), module
    console = importlib.import_module("app.handlers.console")
    assert console.router.path == "/staff"


def test_every_console_route_but_signing_in_carries_one_role_permission(
    settings: Settings,
) -> None:
    app = create_app(replace(settings, demo=True))
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path_format.startswith("/staff"):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's own answer to OPTIONS
            guards = [g.__name__ for g in handler.resolve_guards()]
            permissions = [g for g in guards if g.startswith("staff_permission_")]
            if handler.name in CONSOLE_SIGN_IN:
                assert permissions == [], handler.name
            else:
                # The sub-area's permission, and for a few routes one more that narrows it.
                assert 1 <= len(permissions) <= 2, (handler.name, guards)
