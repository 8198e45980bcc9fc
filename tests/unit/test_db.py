"""Transactions: nothing half written, and concurrent writers all succeed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from piccolo.querystring import QueryString

from app.db import PortalSQLiteEngine, engine, prepare_sqlite_file, write_transaction
from app.settings import Settings
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


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default (022), under which new files are readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_the_sqlite_file_and_its_folder_are_private(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "var"
    mine = replace(settings, data_dir=folder, database_url=f"sqlite:///{folder}/portal.db")
    prepare_sqlite_file(mine)
    with sqlite3.connect(folder / "portal.db") as connection:
        connection.execute("CREATE TABLE t (x)")  # writes the -wal and -shm files
        assert stat.S_IMODE((folder / "portal.db-wal").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "portal.db").stat().st_mode) == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_an_older_world_readable_database_file_is_made_private(
    tmp_path: Path, settings: Settings
) -> None:
    (tmp_path / "portal.db").touch(mode=0o644)
    prepare_sqlite_file(replace(settings, database_url=f"sqlite:///{tmp_path}/portal.db"))
    assert stat.S_IMODE((tmp_path / "portal.db").stat().st_mode) == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_generated_secrets_go_into_a_private_folder(tmp_path: Path) -> None:
    from app.settings import _load_or_create_secrets

    folder = tmp_path / "data"
    _load_or_create_secrets(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "secrets.json").stat().st_mode) == 0o600
