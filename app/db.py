"""Database engine selection and transactions.

`PORTAL_DATABASE_URL` picks the engine: a SQLite file (the embedded default) or PostgreSQL.
Piccolo finds the engine through `app.piccolo_conf`, which builds it from the settings.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from app.settings import Settings, make_private_dir

# Seconds a SQLite writer waits for the lock before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 15


def engine_for(settings: Settings) -> SQLiteEngine | PostgresEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path
        make_private_dir(path.parent)
        return SQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
    return PostgresEngine(config={"dsn": settings.database_url}, extensions=())


def engine() -> Any:
    found = engine_finder()
    if found is None:  # pragma: no cover - piccolo_conf always defines DB
        raise RuntimeError("No database engine configured")
    return found


def prepare_sqlite_file(settings: Settings) -> None:
    """WAL lets readers and one writer work at once; the setting is stored in the file.

    The file holds health records: readable by this user only (0600). SQLite gives its -wal
    and -shm files the database file's mode."""
    if not settings.is_sqlite:
        return
    path = settings.sqlite_path
    make_private_dir(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for kept in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if kept.exists():
            kept.chmod(0o600)  # a file made before this rule, or under a loose umask
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


_sqlite_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_writer() -> asyncio.Lock:
    """One lock per event loop (tests and servers may run several loops over time)."""
    loop = asyncio.get_running_loop()
    lock = _sqlite_writers.get(loop)
    if lock is None:
        lock = _sqlite_writers[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction that will write: IMMEDIATE on SQLite so two writers queue on the busy
    timeout instead of failing halfway with a lock upgrade error."""
    db = engine()
    if db.current_transaction.get() is not None:
        yield  # already inside one: its commit covers this work too
        return
    deferred: dict[str, tuple[list[Any], Flush]] = {}
    reset = _deferred.set(deferred)
    try:
        if isinstance(db, SQLiteEngine):
            # Queue this process's writers here, in order, instead of in SQLite's busy
            # handler, which sleeps and retries with growing pauses (long tails).
            async with (
                _sqlite_writer(),
                db.transaction(transaction_type=TransactionType.immediate),
            ):
                yield
                await _flush(deferred)
        else:
            async with db.transaction():
                yield
                await _flush(deferred)
    finally:
        _deferred.reset(reset)


Flush = Callable[[list[Any]], Awaitable[None]]
# Writes a transaction defers to just before it commits (see defer_until_commit).
_deferred: ContextVar[dict[str, tuple[list[Any], Flush]] | None] = ContextVar(
    "portal_deferred_writes", default=None
)


def defer_until_commit(key: str, item: Any, flush: Flush) -> bool:
    """Collect `item` to be written by `flush(items)` just before the current
    write_transaction commits, in the same transaction. False outside one.

    The audit chain uses this so its lock is held only for the last moments of a
    transaction, not from its first audit row to its commit."""
    pending = _deferred.get()
    if pending is None:
        return False
    pending.setdefault(key, ([], flush))[0].append(item)
    return True


async def _flush(deferred: dict[str, tuple[list[Any], Flush]]) -> None:
    for items, flush in deferred.values():
        await flush(items)


async def open_pool() -> bool:
    """Open the PostgreSQL pool; False when there is nothing to open (SQLite, or already open)."""
    db = engine()
    if not isinstance(db, PostgresEngine) or db.pool is not None:
        return False
    await db.start_connection_pool(min_size=2, max_size=20)
    return True


async def close_pool() -> None:
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.close_connection_pool()
