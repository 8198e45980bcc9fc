"""Static assets: content-hashed URLs, the pinned htmx file, and the service worker script."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from functools import cache
from pathlib import Path

from app.i18n import N_, SUPPORTED_LOCALES, translations_for

APP_DIR = Path(__file__).resolve().parent
STATIC_DIR = APP_DIR / "static"
SW_SOURCE = APP_DIR / "sw" / "sw.js"
HTMX_PATH = STATIC_DIR / "vendor" / "htmx.min.js"

log = logging.getLogger(__name__)

# The app shell the service worker keeps for offline use. Never a page with health data.
SHELL_ASSETS = (
    "css/portal.css",
    "js/portal.js",
    "js/passkeys.js",
    "js/push.js",
    "vendor/htmx.min.js",
    "img/icons.svg",
    "icons/icon-192.png",
)


@cache
def asset_version(relative_path: str) -> str:
    path = STATIC_DIR / relative_path
    if not path.is_file():
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_url(relative_path: str) -> str:
    return f"/static/{relative_path}?v={asset_version(relative_path)}"


def htmx_available() -> bool:
    present = HTMX_PATH.is_file()
    if not present:
        log.warning("htmx is missing from app/static/vendor: run `make vendor` (pages still work)")
    return present


# What a notification says when its payload cannot be read, in every language: the service
# worker picks the one the page registered it with (sw.js?lang=).
SW_FALLBACK_TITLE = N_("Patient portal")
SW_FALLBACK_BODY = N_("Open the portal to see what is new.")


def _fallback_texts() -> dict[str, dict[str, str]]:
    return {
        locale: {
            "title": translations_for(locale).ugettext(SW_FALLBACK_TITLE),
            "body": translations_for(locale).ugettext(SW_FALLBACK_BODY),
        }
        for locale in SUPPORTED_LOCALES
    }


@cache
def inline_stylesheet() -> str:
    """The whole stylesheet, small enough (about 3 KB compressed) to travel inside each page,
    so nothing blocks the first paint. The CSP allows exactly this text by its hash."""
    path = STATIC_DIR / "css" / "portal.css"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


@cache
def inline_start_script() -> str:
    """start.js without its comment lines, inlined in each page: it adds the page's scripts
    after the first paint."""
    source = (STATIC_DIR / "js" / "start.js").read_text(encoding="utf-8")
    return "".join(line for line in source.splitlines(True) if not line.lstrip().startswith("//"))


# What start.js adds, in order, each with the elements that call for it (none: every page).
PAGE_SCRIPTS = (
    ("js/portal.js", ""),
    ("js/passkeys.js", "[data-passkey],[data-passkey-autofill]"),
    ("js/push.js", "[data-push-subscribe]"),
    ("vendor/htmx.min.js", ""),
)


def page_scripts() -> str:
    """start.js's list: "url" or "url@selector", htmx only when it was fetched."""
    entries = []
    for path, selector in PAGE_SCRIPTS:
        if path == "vendor/htmx.min.js" and not htmx_available():
            continue
        entries.append(f"{asset_url(path)}@{selector}" if selector else asset_url(path))
    return " ".join(entries)


def csp_hash_source(text: str) -> str:
    """The CSP source that allows exactly this inline text and nothing else."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def inline_stylesheet_source() -> str:
    return csp_hash_source(inline_stylesheet())


def inline_start_script_source() -> str:
    return csp_hash_source(inline_start_script())


@cache
def service_worker_script() -> str:
    """sw.js with its cache version, precache list and fallback texts filled in.

    The version changes whenever any shell asset or the worker itself changes, so an update
    replaces the old cache."""
    urls = [asset_url(path) for path in SHELL_ASSETS if (STATIC_DIR / path).is_file()]
    urls.append("/offline")
    texts = json.dumps(_fallback_texts(), ensure_ascii=False, sort_keys=True)
    source = SW_SOURCE.read_text()
    digest = hashlib.sha256((source + "".join(urls) + texts).encode()).hexdigest()[:12]
    return (
        source.replace("__CACHE_VERSION__", digest)
        .replace("__PRECACHE_URLS__", json.dumps(urls))
        .replace("__FALLBACK_TEXTS__", texts)
    )
