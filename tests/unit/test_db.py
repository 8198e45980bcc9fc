"""Transactions: nothing half written, and concurrent writers all succeed."""

from __future__ import annotations

import asyncio

import pytest
from piccolo.querystring import QueryString

from app.db import write_transaction
from app.tables import Account


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
