"""The dashboard at scale: how long the page takes to render on PostgreSQL with many
patients and events, and how long the worker's roll-up takes to make its figures.

    .venv/bin/python -m bench.dashboard                      # 20,000 patients, 200,000 events
    .venv/bin/python -m bench.dashboard --patients 1000000 --events 10000000

The database is PORTAL_BENCH_DASHBOARD_URL (default `portal_dashboard` on the local server),
dropped and created again at the start. Patients, visits (one or two each over two years),
open invitations and facts (spread over thirteen months, the kinds in the mix a portal sees)
are written with COPY; then the roll-up runs once, as the worker would, and the page is
fetched through the whole app (session, guard, query, template) `--renders` times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx

URL = os.environ.get(
    "PORTAL_BENCH_DASHBOARD_URL", "postgresql://postgres@127.0.0.1:5432/portal_dashboard"
)
ZONE = ZoneInfo("America/New_York")
CHUNK = 200_000
# The kinds of fact and how often each happens, roughly as a portal sees them.
MIX = (
    ("signed_in", 40),
    ("result_released", 12),
    ("result_viewed", 9),
    ("visit_booked", 10),
    ("message_sent", 6),
    ("message_answered", 5),
    ("reply_read", 5),
    ("push_enabled", 2),
    ("app_installed", 2),
    ("enrolled", 3),
    ("invited", 3),
    ("visit_cancelled", 1),
    ("survey_ease", 1),
    ("survey_recommend", 1),
)
AREAS = {
    "result_viewed": "results",
    "message_sent": "messages",
    "reply_read": "messages",
    "visit_booked": "visits",
    "visit_cancelled": "visits",
}


def _server_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit((*parts[:2], "/postgres", *parts[3:])), parts.path.lstrip("/")


async def _fresh_database() -> None:
    server, name = _server_url(URL)
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _pid() -> str:
    return secrets.token_urlsafe(9)


async def _copy(connection: asyncpg.Connection, table: str, columns: list[str], rows: Any) -> int:
    count = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            await connection.copy_records_to_table(table, records=batch, columns=columns)
            count += len(batch)
            batch = []
    if batch:
        await connection.copy_records_to_table(table, records=batch, columns=columns)
        count += len(batch)
    return count


async def _build(patients: int, events: int, rng: random.Random) -> dict[str, float]:
    """The clinic, its patients, visits, open invitations and facts; seconds per step."""
    timings: dict[str, float] = {}
    now = datetime.now(UTC)
    connection = await asyncpg.connect(URL)
    try:
        org = await connection.fetchval(
            "INSERT INTO organization (public_id, name, phone, timezone) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            _pid(),
            "Bench Clinic",
            "(555) 010-0000",
            str(ZONE),
        )
        locations = []
        for code in ("north", "south"):
            locations.append(
                await connection.fetchval(
                    "INSERT INTO location (public_id, organization, code, name, address_line,"
                    " city, state, postal_code, phone, timezone)"
                    " VALUES ($1, $2, $3, $4, '', '', '', '', '', $5) RETURNING id",
                    _pid(),
                    org,
                    code,
                    f"{code.title()} Clinic",
                    str(ZONE),
                )
            )
        clinicians = []
        for index in range(6):
            clinicians.append(
                await connection.fetchval(
                    "INSERT INTO clinician (public_id, prefix, given_name, family_name,"
                    " credentials, specialty, location, accepts_online_booking, npi)"
                    " VALUES ($1, 'Dr.', 'Bench', $2, 'MD', 'Family medicine', $3, true, NULL)"
                    " RETURNING id",
                    _pid(),
                    f"Clinician{index}",
                    locations[index % 2],
                )
            )
        started = time.perf_counter()
        first_id = 1
        await _copy(
            connection,
            "patient",
            [
                "public_id", "mrn", "given_name", "family_name", "birth_date", "sex",
                "phone", "preferred_language", "primary_clinician", "created_at",
            ],
            (
                (
                    _pid(), f"B-{number:08d}", "Pat", f"Bench{number}",
                    date(1950 + number % 60, 1 + number % 12, 1 + number % 28),
                    "female" if number % 2 else "male", f"+1555{number:07d}", "en",
                    clinicians[number % len(clinicians)], now,
                )
                for number in range(patients)
            ),
        )  # fmt: skip
        first_id = await connection.fetchval("SELECT MIN(id) FROM patient")
        timings["patients"] = time.perf_counter() - started

        started = time.perf_counter()

        def visits() -> Any:
            for offset in range(patients):
                for _ in range(1 if rng.random() < 0.5 else 2):
                    start = now - timedelta(days=rng.randint(1, 730), hours=rng.randint(0, 9))
                    index = offset % len(clinicians)
                    yield (
                        _pid(), first_id + offset, clinicians[index], locations[index % 2],
                        start, start + timedelta(minutes=30), "follow_up",
                        "fulfilled" if rng.random() < 0.94 else "noshow",
                        rng.choice(("portal", "staff", "phone")), start - timedelta(days=14),
                    )  # fmt: skip

        await _copy(
            connection,
            "appointment",
            [
                "public_id", "patient", "clinician", "location", "starts_at", "ends_at",
                "visit_type", "status", "channel", "created_at",
            ],
            visits(),
        )  # fmt: skip
        timings["visits"] = time.perf_counter() - started

        started = time.perf_counter()
        invited = max(patients // 50, 1)
        await _copy(
            connection,
            "enrollment_invite",
            ["public_id", "patient", "token_hash", "via", "created_at", "expires_at"],
            (
                (
                    _pid(), first_id + offset, secrets.token_hex(32), "sms",
                    now - timedelta(days=8 + offset % 30), now - timedelta(days=1 + offset % 30),
                )
                for offset in rng.sample(range(patients), invited)
            ),
        )  # fmt: skip
        timings["invites"] = time.perf_counter() - started

        started = time.perf_counter()
        kinds = [kind for kind, _ in MIX]
        weights = [weight for _, weight in MIX]

        def facts() -> Any:
            for _ in range(events):
                kind = rng.choices(kinds, weights)[0]
                offset = rng.randrange(patients)
                when = now - timedelta(seconds=rng.randint(0, 395 * 86400))
                day = when.astimezone(ZONE).date()
                channel = rng.choice(("portal", "staff")) if kind == "visit_booked" else "portal"
                value = None
                if kind == "message_answered":
                    value = float(rng.randint(5, 4000))
                elif kind == "result_viewed":
                    value = float(rng.random() < 0.6)
                elif kind == "survey_ease":
                    value = float(rng.randint(1, 5))
                elif kind == "survey_recommend":
                    value = float(rng.randint(0, 10))
                yield (
                    kind, AREAS.get(kind, "") if channel == "portal" else "", first_id + offset,
                    locations[offset % len(clinicians) % 2], when, day, day.replace(day=1),
                    channel, value,
                )  # fmt: skip

        await _copy(
            connection,
            "fact",
            ["kind", "area", "patient", "location", "occurred_at", "day", "month", "channel",
             "value"],
            facts(),
        )  # fmt: skip
        timings["facts"] = time.perf_counter() - started
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return timings


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


async def _measure(renders: int) -> dict[str, Any]:
    from app.clinic import clinic_profile_load, clinic_profile_set
    from app.handlers.support import STAFF_COOKIE
    from app.main import create_app
    from app.services.dashboard import dashboard_refresh
    from app.services.sessions import staff_session_start
    from app.settings import get_settings
    from app.tables import StaffUser

    clinic_profile_set(await clinic_profile_load())
    started = time.perf_counter()
    written = await dashboard_refresh(months=13)
    rollup = time.perf_counter() - started
    admin = StaffUser(
        given_name="Bench", family_name="Admin", email="bench.admin@clinic.test", role="admin"
    )
    await StaffUser.insert(admin)
    token = await staff_session_start(
        staff_id=admin.id, lifetime=timedelta(hours=1), ip="127.0.0.1", user_agent="bench",
        reason="bench",
    )  # fmt: skip
    app = create_app(get_settings())
    results: dict[str, Any] = {"rollup_seconds": rollup, "figures": written}
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            client.cookies.set(STAFF_COOKIE, token, path="/staff")
            for label, path in (
                ("location", "/staff/dashboard?location=north"),
                ("clinic", "/staff/dashboard"),
            ):
                first = await client.get(path)
                assert first.status_code == 200, (first.status_code, first.text[-3000:])
                assert "Top opportunities" in first.text
                times = []
                for _ in range(renders):
                    begun = time.perf_counter()
                    answer = await client.get(path)
                    times.append((time.perf_counter() - begun) * 1000)
                    assert answer.status_code == 200
                results[label] = times
    return results


async def _run(args: argparse.Namespace) -> None:
    rng = random.Random(20261204)
    await _fresh_database()
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from app.db import close_pool, open_pool

    migrated = await run_forwards(app_name="portal")
    assert migrated.success, migrated.message
    await open_pool()
    try:
        built = await _build(args.patients, args.events, rng)
        measured = await _measure(args.renders)
    finally:
        await close_pool()
    print(f"\nDashboard on PostgreSQL: {args.patients:,} patients, {args.events:,} facts")
    for step, seconds in built.items():
        print(f"  build {step:<9} {seconds:8.1f} s")
    print(
        f"  roll-up (worker, 13 months x 3 scopes) {measured['rollup_seconds']:.1f} s,"
        f" {measured['figures']:,} figures"
    )
    print("\n| page | renders | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|")
    for label in ("clinic", "location"):
        times = measured[label]
        print(
            f"| /staff/dashboard ({label}) | {len(times)} | {statistics.median(times):.1f}"
            f" | {_percentile(times, 0.95):.1f} | {max(times):.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--renders", type=int, default=30)
    args = parser.parse_args()
    os.environ["PORTAL_DATABASE_URL"] = URL
    os.environ.setdefault("PORTAL_DATA_DIR", str(Path(tempfile.gettempdir()) / "portal-bench-dash"))
    os.environ.setdefault("PORTAL_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ["PORTAL_EMBEDDED_WORKER"] = "0"
    os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
