"""Transactions: nothing half written, and concurrent writers all succeed."""

from __future__ import annotations

import asyncio
import threading

import pytest
from piccolo.querystring import QueryString

from app.db import PortalSQLiteEngine, engine, write_transaction
from app.tables import Account
from tests.factories import unique


async def test_a_failed_transaction_leaves_nothing_behind() -> None:
    name = "Half Written"

    async def write_then_fail() -> None:
        async with write_transaction():
            await Account.insert(Account(display_name=name))
            raise RuntimeError("fails after the first write")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert not await Account.exists().where(Account.display_name == name)


async def test_twenty_concurrent_writers_all_commit() -> None:
    async def write(number: int) -> None:
        async with write_transaction():
            await Account.insert(Account(display_name=f"Concurrent {number}"))
            await Account.count()

    await asyncio.gather(*(write(number) for number in range(20)))
    assert await Account.count().where(Account.display_name.like("Concurrent %")) == 20


async def test_a_write_inside_another_joins_it_and_rolls_back_with_it() -> None:
    name = "Nested Write"

    async def outer_fails() -> None:
        async with write_transaction():
            async with write_transaction():
                await Account.insert(Account(display_name=name))
            raise RuntimeError("the outer work fails")

    with pytest.raises(RuntimeError):
        await outer_fails()
    assert not await Account.exists().where(Account.display_name == name)


async def test_sqlite_runs_in_wal_mode_so_readers_do_not_block_the_writer() -> None:
    from app.db import engine
    from app.settings import get_settings

    if not get_settings().is_sqlite:
        pytest.skip("WAL is a SQLite setting; this run is on PostgreSQL")
    [row] = await engine().run_querystring(QueryString("PRAGMA journal_mode"))
    assert row["journal_mode"] == "wal"


def _sqlite_engine() -> PortalSQLiteEngine:
    db = engine()
    if not isinstance(db, PortalSQLiteEngine):
        pytest.skip("a SQLite connection setting; this run is on PostgreSQL")
    return db


async def test_sqlite_connections_use_the_production_settings() -> None:
    db = _sqlite_engine()
    expected = {"synchronous": 1, "foreign_keys": 1, "cache_size": 2000, "busy_timeout": 15000}
    # The writer first, then the readers (reads outside a transaction).
    for connection in db.connections().all:
        run = connection.run
        for name, value in expected.items():
            [row] = await run(f"PRAGMA {name}")
            assert list(row.values()) == [value], name
        [row] = await run("PRAGMA mmap_size")
        assert list(row.values()) == [134217728]


async def test_sqlite_queries_reuse_connections_instead_of_opening_threads() -> None:
    _sqlite_engine()
    await Account.count()  # this loop's connections exist from here on
    threads = threading.active_count()
    for number in range(30):
        await Account.count()
        async with write_transaction():
            await Account.insert(Account(display_name=f"Reused {number}"))
    assert threading.active_count() <= threads + len(_sqlite_engine().connections().all)


async def test_concurrent_transactions_on_the_shared_writer_never_interleave() -> None:
    """Half the transactions roll back while the others are open: on one connection, an
    interleaved rollback would take the others' rows with it, or BEGIN would fail."""
    prefix = unique("Interleave ")

    async def visit(number: int) -> None:
        async with write_transaction():
            await Account.insert(Account(display_name=f"{prefix}{number}"))
            await asyncio.sleep(0)
            # Reads inside see this transaction's own row.
            assert await Account.exists().where(Account.display_name == f"{prefix}{number}")
            await asyncio.sleep(0)
            if number % 2:
                raise RuntimeError("this one rolls back")

    async def read_meanwhile() -> None:
        for _ in range(20):
            await Account.count().where(Account.display_name.like(f"{prefix}%"))
            await asyncio.sleep(0)

    results = await asyncio.gather(
        *(visit(number) for number in range(20)),
        *(read_meanwhile() for _ in range(5)),
        return_exceptions=True,
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    assert all(str(error) == "this one rolls back" for error in errors), errors
    assert len(errors) == 10
    rows = await Account.select(Account.display_name).where(Account.display_name.like(f"{prefix}%"))
    assert sorted(row["display_name"] for row in rows) == sorted(
        f"{prefix}{number}" for number in range(0, 20, 2)
    )


async def test_a_read_outside_a_transaction_does_not_see_uncommitted_rows() -> None:
    name = unique("Uncommitted ")
    seen_inside = asyncio.Event()
    finish = asyncio.Event()

    async def writer() -> None:
        async with write_transaction():
            await Account.insert(Account(display_name=name))
            seen_inside.set()
            await finish.wait()

    task = asyncio.create_task(writer())
    await seen_inside.wait()
    assert not await Account.exists().where(Account.display_name == name)
    finish.set()
    await task
    assert await Account.exists().where(Account.display_name == name)
