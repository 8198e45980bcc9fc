"""The layers import downwards only: handlers -> services -> notices -> the bottom layer
(access, tables, db, channels, clock, clinic, errors, i18n, settings), never back up. The web
layer is app/handlers (one module per area) with its shared helpers, app/handlers/support.py
and app/web/.

Read from the source with `ast`, so an import tucked inside a function counts as well."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
BOTTOM = (
    "app.access",
    "app.tables",
    "app.db",
    "app.channels",
    "app.clock",
    "app.clinic",
    "app.errors",
    "app.i18n",
    "app.settings",
)
# The services a notice is delivered through: notices build on them, so they never import
# app.notices back.
DELIVERY = (
    "app.services.outbox",
    "app.services.notifications",
    "app.services.push",
    "app.services.accounts",
    "app.services.self_access",
)
# The one service that hands messages to the channels.
OUTBOX = "app.services.outbox"
HANDLER_HELPERS = "app.handlers.support"
WEB_HELPERS = "app.web"
# The console is a package of sub-areas; its __init__ puts their routers under /staff.
CONSOLE = "app.handlers.console"


def _within(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def _name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, frozenset[str]]:
    """Every module under app/, with the app modules it imports."""
    paths = {_name(path): path for path in sorted(APP.rglob("*.py"))}
    found: dict[str, frozenset[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from this package, `level - 1` packages up
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                imported.add(base)
                # `from app import i18n` imports the module app.i18n.
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        found[name] = frozenset(
            module for module in imported if module in paths and module != "app"
        )
    return found


def _breaches(layer: tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {module}"
        for name, imported in modules().items()
        if _within(name, *layer)
        for module in imported
        if not _within(module, *allowed)
    )


def test_every_module_is_read() -> None:
    assert "app.services.outbox" in modules()
    assert "app.i18n" in modules()["app.services.console.posters"]  # `from app import i18n`


def test_services_import_only_services_notices_and_the_bottom_layer() -> None:
    assert _breaches(("app.services",), ("app.services", "app.notices", *BOTTOM)) == []


def test_only_the_outbox_among_the_services_talks_to_the_channels() -> None:
    talking = sorted(
        name
        for name, imported in modules().items()
        if _within(name, "app.services", "app.notices")
        and any(_within(module, "app.channels") for module in imported)
    )
    assert talking == [OUTBOX]


def test_notices_build_only_on_the_delivery_services_and_the_bottom_layer() -> None:
    assert _breaches(("app.notices",), ("app.notices", *DELIVERY, *BOTTOM)) == []


def test_the_delivery_services_never_import_the_notices_they_deliver() -> None:
    assert _breaches(DELIVERY, tuple(m for m in modules() if not _within(m, "app.notices"))) == []


def test_the_bottom_layer_imports_only_itself() -> None:
    assert _breaches(BOTTOM, BOTTOM) == []


def test_channels_are_adapters_that_import_no_other_part_of_the_app() -> None:
    assert _breaches(("app.channels",), ("app.channels",)) == []


def test_nothing_imports_a_handler_but_the_handlers_and_the_app_itself() -> None:
    importers = sorted(
        name
        for name, imported in modules().items()
        if any(_within(module, "app.handlers") for module in imported)
        and not _within(name, "app.handlers", WEB_HELPERS, "app.main")
    )
    assert importers == []


def test_handler_modules_import_no_other_handler_module() -> None:
    """What areas share lives in the helpers, never in another area's module."""
    shared = sorted(
        f"{name} imports {module}"
        for name, imported in modules().items()
        if _within(name, "app.handlers", WEB_HELPERS)
        for module in imported
        if _within(module, "app.handlers")
        and module not in ("app.handlers", HANDLER_HELPERS)
        and not (name == CONSOLE and _within(module, CONSOLE))
    )
    assert shared == []
