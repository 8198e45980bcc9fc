"""Logging hygiene: secrets in paths and what staff search for never reach the access log.

uvicorn logs each request's path with its query. Links that carry a secret (enrollment,
caregiver, staff sign-up, waitlist offer, demo sign-in) lose the secret, and every query value
is replaced unless its name is on a short list of harmless ones (a staff search
`?q=garcia 3/14/1985`, an audit search `?mrn=`, a `next` path that may itself hold a link).

uvicorn logs the path as sent, while the router serves it percent-decoded (`/%63are/...` and
`/care%2F...` open a caregiver link): paths are decoded before they are matched, and matched
in any case."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote

# Servers route "//visits//offers/x" like "/visits/offers/x": any run of slashes counts.
_SECRET_PATHS = re.compile(
    r"/+(enroll|care|visits/+offers|demo/+sign-in|demo/+staff)/+[^\s\"?#]+", re.IGNORECASE
)
# In a decoded path everything after the prefix goes: a decoded "?" or "#" is part of it.
_SECRET_IN_PATH = re.compile(
    r"/+(enroll|care|visits/+offers|demo/+sign-in|demo/+staff)/+.+", re.IGNORECASE | re.DOTALL
)
# Query names whose values say nothing about a person: flags, dates, asset versions, pages.
# (Notices travel in a cookie, never a query: app/web/flash.py.)
_PLAIN_QUERY_NAMES = frozenset(
    {"joining", "by", "show", "page", "v", "since", "until", "day", "done"}
)
_NAME = re.compile(r"[A-Za-z_]{1,32}")
REDACTED = "…"


def redact_target(target: str) -> str:
    """A request path with its query, as safe to log."""
    path, question, query = target.partition("?")
    decoded = _decoded(path)
    if _SECRET_IN_PATH.search(decoded):
        path = _SECRET_IN_PATH.sub(rf"/\1/{REDACTED}", decoded)
    if not question:
        return path
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if name in _PLAIN_QUERY_NAMES:
            pairs.append(pair)
        elif _NAME.fullmatch(name):
            pairs.append(f"{name}={REDACTED}" if equals else name)
        else:
            pairs.append(REDACTED)
    return f"{path}?{'&'.join(pairs)}"


def _decoded(path: str) -> str:
    """Percent-decoded until it no longer changes (a few rounds at most)."""
    for _ in range(3):
        once = unquote(path)
        if once == path:
            break
        path = once
    return path


def _redact(value: str) -> str:
    if value.startswith("/"):
        return redact_target(value)
    return _SECRET_PATHS.sub(rf"/\1/{REDACTED}", _decoded(value))


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _redact(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        record.msg = _redact(str(record.msg))
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with the access log's tokens redacted. Given to
    uvicorn as a config (not added in this process) so every worker process applies it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secret_paths"] = {"()": RedactSecretPaths}
    config["handlers"]["access"].setdefault("filters", []).append("redact_secret_paths")
    return dict(config)
