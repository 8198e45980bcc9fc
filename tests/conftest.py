"""Test set-up: a fresh database for this run, chosen before the app is imported.

SQLite (a file in a temporary folder) by default; PostgreSQL when PORTAL_TEST_POSTGRES_URL is
set, in a database created for this run and dropped after it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

_DATA_DIR = Path(tempfile.mkdtemp(prefix="portal-test-"))
_POSTGRES_SERVER = os.environ.get("PORTAL_TEST_POSTGRES_URL", "")
_POSTGRES_DB = f"portal_test_{os.getpid()}_{secrets.token_hex(3)}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_POSTGRES_SERVER)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


os.environ["PORTAL_DATA_DIR"] = str(_DATA_DIR)
os.environ["PORTAL_SECRET_KEY"] = "test-secret-key-0123456789abcdef"
os.environ.pop("PORTAL_DEMO", None)
# Tests deliver the outbox themselves; a background worker would race them.
os.environ["PORTAL_EMBEDDED_WORKER"] = "0"
_POSTGRES_PROBLEM = ""
if _POSTGRES_SERVER:
    try:
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{_POSTGRES_DB}"'))
    except OSError as error:  # nothing listens there: one line at start, not a traceback
        _where = urlsplit(_POSTGRES_SERVER)
        _POSTGRES_PROBLEM = (
            f"no PostgreSQL at {_where.hostname}:{_where.port or 5432} "
            f"(PORTAL_TEST_POSTGRES_URL): {error}; `make unit-postgres` starts one"
        )
    os.environ["PORTAL_DATABASE_URL"] = _with_database(_POSTGRES_SERVER, _POSTGRES_DB)
else:
    os.environ["PORTAL_DATABASE_URL"] = f"sqlite:///{_DATA_DIR}/portal.db"

from app.clock import set_clock  # noqa: E402
from app.settings import Settings, get_settings  # noqa: E402


def pytest_report_header() -> str:
    return f"portal database: {'postgresql' if _POSTGRES_SERVER else 'sqlite'}"


def pytest_sessionstart() -> None:
    if _POSTGRES_PROBLEM:
        pytest.exit(_POSTGRES_PROBLEM, returncode=4)


def pytest_sessionfinish() -> None:
    if _POSTGRES_SERVER and not _POSTGRES_PROBLEM:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{_POSTGRES_DB}" WITH (FORCE)'))
    # This run's database file, private documents and secrets go with it.
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
async def migrated_database() -> AsyncIterator[None]:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from app.db import close_pool, open_pool, prepare_sqlite_file

    prepare_sqlite_file(get_settings())
    result = await run_forwards(app_name="portal")
    assert result.success, result.message
    await open_pool()
    yield
    await close_pool()


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture(autouse=True)
async def fresh_rate_limits() -> None:
    """Every test starts with no attempts counted: the web tests all come from one address."""
    from app.services.outreach.news import news_forget
    from app.services.rate_limit import rate_limit_reset

    await rate_limit_reset()
    news_forget()  # home's note is kept in memory: each test reads its own


@pytest.fixture(autouse=True)
def system_clock() -> Iterator[None]:
    """Every test starts on the real clock, whatever the one before it did."""
    yield
    set_clock(None)
