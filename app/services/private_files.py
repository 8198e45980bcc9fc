"""Files the portal keeps for patients (message attachments, visit documents) under the data
directory, outside the web root.

Each is named by a random key and readable by the portal's user only. A file is written before
the row that names it commits, so a failed send or import leaves an unnamed file, never a row
without its file. Only the services that found that row through the patient context (or a
staff permission) read a file back (docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path

from app.settings import get_settings, make_private_dir

_KEY = re.compile(r"[0-9a-f]{32}")


class PrivateFiles:
    """One folder of such files under the data directory."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    @property
    def directory(self) -> Path:
        return get_settings().data_dir / self.folder

    def path(self, key: str) -> Path:
        """Where a key's file lives; ValueError for anything that is not a key we made."""
        if not _KEY.fullmatch(key):
            raise ValueError("not a storage key")
        return self.directory / key[:2] / key

    def store_sync(self, data: bytes) -> str:
        """Write the bytes under a new random key (never over another file); the key."""
        key = secrets.token_hex(16)
        path = self.path(key)
        make_private_dir(self.directory)
        make_private_dir(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return key

    async def store(self, data: bytes) -> str:
        return await asyncio.to_thread(self.store_sync, data)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)
