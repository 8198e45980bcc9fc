"""Transactions: nothing half written, and concurrent writers all succeed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from piccolo.querystring import QueryString

from app.db import prepare_sqlite_file, write_transaction
from app.settings import Settings
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
