"""Logging hygiene: secrets in paths (enrollment links) never reach the access log."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

_SECRET_PATHS = re.compile(r"/(enroll|demo/sign-in)/[^\s\"?]+")


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_PATHS.sub(r"/\1/…", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        record.msg = _SECRET_PATHS.sub(r"/\1/…", str(record.msg))
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with the access log's tokens redacted. Given to
    uvicorn as a config (not added in this process) so every worker process applies it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secret_paths"] = {"()": RedactSecretPaths}
    config["handlers"]["access"].setdefault("filters", []).append("redact_secret_paths")
    return dict(config)
