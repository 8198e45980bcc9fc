"""Database engine selection and transactions.

`PORTAL_DATABASE_URL` picks the engine: a SQLite file (the embedded default) or PostgreSQL.
Piccolo finds the engine through `app.piccolo_conf`, which builds it from the settings.

On SQLite each process keeps a few long-lived connections per event loop instead of Piccolo's
connection per query: one writer, used by every transaction and every write, one at a time
(an asyncio lock, so transactions of concurrent requests never interleave on it), and a few
read-only readers for reads outside a transaction, which WAL lets run beside the writer.
Each connection lives on one thread of its own, so a query costs one hop to that thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.querystring import QueryString

from app.settings import Settings, make_private_dir

# Seconds a SQLite writer waits for the lock before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 15
# Read-only connections per event loop for reads outside a transaction.
SQLITE_READERS = 3
# Rails 8's production defaults: WAL with synchronous=NORMAL (a commit waits for no fsync;
# a power cut may lose the last commits, never corrupt the file), a 2000-page cache,
# 128 MiB of memory-mapped reads and a WAL trimmed back to 64 MiB after checkpoints.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA cache_size = 2000",
    "PRAGMA mmap_size = 134217728",
    "PRAGMA journal_size_limit = 67108864",
)


def _dict_rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    if cursor.description is None:
        return []
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SQLiteConnection:
    """One sqlite3 connection and the one thread that opens and uses it."""

    def __init__(self, connect: dict[str, Any], pragmas: Sequence[str]) -> None:
        self._connect = connect
        self._pragmas = pragmas
        self._raw: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-sqlite")

    def _run(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        if self._raw is None:
            raw = sqlite3.connect(**self._connect, check_same_thread=False)
            for pragma in self._pragmas:
                raw.execute(pragma)
            self._raw = raw
        cursor = self._raw.execute(sql, args)
        try:
            return _dict_rows(cursor)
        finally:
            cursor.close()  # an open cursor would hold its read snapshot

    async def run(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, sql, args)

    async def execute(self, sql: str) -> None:
        """What Piccolo's transaction and savepoint code calls."""
        await self.run(sql)

    def _close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)


@dataclass
class _Connections:
    writer: SQLiteConnection
    readers: asyncio.Queue[SQLiteConnection]
    all: list[SQLiteConnection]
    # Held for a whole transaction, or one write outside a transaction.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class PortalSQLiteTransaction(SQLiteTransaction):
    """Piccolo's transaction on the shared writer, which it holds until commit or rollback."""

    engine: PortalSQLiteEngine
    connection: SQLiteConnection

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        connections = self.engine.connections()
        await connections.write_lock.acquire()
        try:
            self.connection = connections.writer
            await self.connection.execute(f"BEGIN {self.transaction_type.value}")
        except BaseException:
            connections.write_lock.release()
            raise
        self._lock = connections.write_lock
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.connection.execute("ROLLBACK")
            elif not self._committed and not self._rolled_back:
                try:
                    await self.connection.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT leaves the transaction open on the shared connection.
                    await self.connection.execute("ROLLBACK")
                    raise
        finally:
            self.engine.current_transaction.reset(self.context)
            self._lock.release()
        return exception is None


class PortalSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine on long-lived connections (see the module docstring)."""

    def __init__(self, path: str, **connection_kwargs: Any) -> None:
        super().__init__(path=path, **connection_kwargs)
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connections] = (
            weakref.WeakKeyDictionary()
        )

    def connections(self) -> _Connections:
        """This event loop's connections (tests and servers may run several loops over time)."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            writer = SQLiteConnection(self.connection_kwargs, SQLITE_PRAGMAS)
            # Readers: the same settings, minus the journal mode (a writer's business),
            # and refusing writes, so a write sent to one fails loudly.
            reader_pragmas = (*SQLITE_PRAGMAS[1:], "PRAGMA query_only = ON")
            readers: asyncio.Queue[SQLiteConnection] = asyncio.Queue()
            everyone = [writer]
            for _ in range(SQLITE_READERS):
                reader = SQLiteConnection(self.connection_kwargs, reader_pragmas)
                readers.put_nowait(reader)
                everyone.append(reader)
            found = self._by_loop[loop] = _Connections(writer, readers, everyone)
        return found

    async def close_connections(self) -> None:
        loop = asyncio.get_running_loop()
        found = self._by_loop.pop(loop, None)
        if found is not None:
            for connection in found.all:
                await connection.close()

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> PortalSQLiteTransaction:
        # IMMEDIATE by default: another process's writer then queues on the busy timeout
        # instead of failing halfway with a lock upgrade error.
        return PortalSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )

    async def _run(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        current = self.current_transaction.get()
        if current is not None:
            return await current.connection.run(sql, args)  # type: ignore[no-any-return]
        connections = self.connections()
        if sql.lstrip()[:6].upper() == "SELECT":
            reader = await connections.readers.get()
            try:
                return await reader.run(sql, args)
            finally:
                connections.readers.put_nowait(reader)
        async with connections.write_lock:
            return await connections.writer.run(sql, args)

    async def run_querystring(self, querystring: QueryString, in_pool: bool = False) -> Any:
        query, args = querystring.compile_string(engine_type=self.engine_type)
        return await self._run(query, args)

    async def run_ddl(self, ddl: str, in_pool: bool = False) -> Any:
        return await self._run(ddl, ())


def engine_for(settings: Settings) -> SQLiteEngine | PostgresEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path
        make_private_dir(path.parent)
        return PortalSQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
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


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction that will write: IMMEDIATE on SQLite, where this process's writers
    queue in order for the one writer connection instead of in SQLite's busy handler,
    which sleeps and retries with growing pauses (long tails)."""
    db = engine()
    if db.current_transaction.get() is not None:
        yield  # already inside one: its commit covers this work too
        return
    deferred: dict[str, tuple[list[Any], Flush]] = {}
    reset = _deferred.set(deferred)
    try:
        if isinstance(db, SQLiteEngine):
            async with db.transaction(transaction_type=TransactionType.immediate):
                yield
                await _flush(deferred)
        else:
            async with db.transaction():
                yield
                await _flush(deferred)
    finally:
        _deferred.reset(reset)


async def lock_names(*names: str) -> None:
    """Hold a lock on each name until the current transaction ends, so read-then-write
    checks (a count against a limit, then an insert) on one contact or address run one at a
    time across app processes. PostgreSQL: transaction-level advisory locks, taken in a
    fixed order so two callers cannot deadlock. SQLite: nothing to do, as a write
    transaction already holds the database's one write lock."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        return
    if db.current_transaction.get() is None:
        raise RuntimeError("lock_names needs a transaction")
    keys = sorted({_lock_key(name) for name in names})
    for key in keys:
        await db.run_querystring(QueryString("SELECT pg_advisory_xact_lock({})", key))


def _lock_key(name: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


Flush = Callable[[list[Any]], Awaitable[None]]
# Writes a transaction defers to just before it commits (see defer_until_commit).
_deferred: ContextVar[dict[str, tuple[list[Any], Flush]] | None] = ContextVar(
    "portal_deferred_writes", default=None
)


def defer_until_commit(key: str, item: Any, flush: Flush) -> bool:
    """Collect `item` to be written by `flush(items)` just before the current
    write_transaction commits, in the same transaction. False outside one.

    The audit trail uses this to write a transaction's rows in one statement."""
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
    """Close the PostgreSQL pool, or this event loop's SQLite connections."""
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.close_connection_pool()
    elif isinstance(db, PortalSQLiteEngine):
        await db.close_connections()
