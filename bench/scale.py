"""Scale: the portal on a large clinic's PostgreSQL database, and across several processes.

`python -m bench.load --scale` (or `python -m bench.scale`) runs, in one process:
1. the demo clinic alone: home, results and a test page at 1 and 20 users;
2. the same database grown to a large clinic (100,000 patients, 5 million results in 1 million
   reports, 20 million sealed audit rows; `--factor` scales all three), then the same pages, so
   each is reported as a ratio of its small-data latency;
3. the query plans behind those pages (PostgreSQL's auto_explain, read from the server log);
4. `portal audit verify` over the whole chain (rows per second) and the sealer's throughput;
5. `portal serve --workers 2` with two `portal worker` processes on the same PostgreSQL and
   Redis: every queued text is delivered exactly once (to a fake SMS provider in this
   process), and a per-address rate limit holds across both web processes.
The database is PORTAL_BENCH_SCALE_URL (default: `portal_scale` on the local server), dropped
and created again at the start. Growing it takes a quarter of an hour on two cores; `--reuse`
keeps a database an earlier run grew (after VACUUM ANALYZE) and measures the demo clinic
on a second database beside it (`<name>_small`), so the pages can be measured again, on a
quieter machine, without growing it again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx

from bench.harness import ROOT, free_port, running, sign_in

SCALE_URL = os.environ.get(
    "PORTAL_BENCH_SCALE_URL", "postgresql://postgres@127.0.0.1:5432/portal_scale"
)
REDIS_URL = os.environ.get("PORTAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_LOG = Path(os.environ.get("PORTAL_BENCH_POSTGRES_LOG", "/var/log/postgresql"))
PATIENTS, REPORTS, OBSERVATIONS_PER_REPORT, AUDIT_ROWS = 100_000, 1_000_000, 5, 20_000_000
COPY_CHUNK = 200_000
MESSAGES = 400


def _small_url() -> str:
    parts = urlsplit(SCALE_URL)
    return urlunsplit(parts._replace(path=parts.path + "_small"))


def _env(database_url: str = SCALE_URL, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_DEMO": "1",
        "PORTAL_LOG_LEVEL": "WARNING",
        "PORTAL_DATA_DIR": str(Path(tempfile.gettempdir()) / "portal-bench-scale"),
        **extra,
    }


def _portal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env or _env(),
        check=True,
        capture_output=True,
        text=True,
    )


@contextmanager
def _serve(workers: int = 1, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with running(command, env or _env(), port) as url:
        yield url


@contextmanager
def _processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[None]:
    started = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in commands
    ]
    try:
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def _connect(url: str = SCALE_URL) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=10)


async def _recreate_database(url: str = SCALE_URL) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await _connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


# --- the large clinic -------------------------------------------------------------------


async def _grow(factor: float) -> dict[str, float]:
    """Add patients, reports with observations, and sealed audit rows; seconds per step."""
    patients = max(1, int(PATIENTS * factor))
    reports = max(1, int(REPORTS * factor))
    audit_rows = max(1, int(AUDIT_ROWS * factor))
    timings: dict[str, float] = {}
    db = await _connect()
    try:
        started = time.perf_counter()
        # Public ids of 16 characters: the demo's are 12, so these never collide with them.
        await db.execute(
            """INSERT INTO patient (public_id, mrn, given_name, family_name, birth_date, sex,
                   preferred_language, address_line, city, state, postal_code, created_at)
               SELECT 'pa' || lpad(to_hex(g), 14, '0'), 'SC-' || g, 'Pat' || g, 'Scale',
                   date '1940-01-01' + (g % 30000), CASE WHEN g % 2 = 0 THEN 'female'
                   ELSE 'male' END, 'en', '', '', '', '', now()
               FROM generate_series(1, $1) AS g""",
            patients,
        )
        first = await db.fetchval("SELECT min(id) FROM patient WHERE mrn LIKE 'SC-%'")
        timings["patients"] = time.perf_counter() - started

        started = time.perf_counter()
        await db.execute(
            """INSERT INTO lab_report (public_id, patient, loinc, name, status, effective_at,
                   issued_at, released_at, confidential)
               SELECT 're' || lpad(to_hex(g), 14, '0'), $2 + (g % $3), '24323-8',
                   'Comprehensive metabolic panel', 'final', at, at, at, false
               FROM generate_series(1, $1) AS g,
                   LATERAL (SELECT now() - (g % 3000) * interval '1 day' AS at) AS t""",
            reports,
            first,
            patients,
        )
        timings["reports"] = time.perf_counter() - started

        started = time.perf_counter()
        await db.execute(
            """INSERT INTO lab_observation (public_id, report, patient, loinc, name, value_number,
                   unit, reference_low, reference_high, interpretation, effective_at)
               SELECT 'ob' || lpad(to_hex(r.id * 8 + k), 14, '0'), r.id, r.patient, '2345-7',
                   'Glucose', 80 + k * 5, 'mg/dL', 70, 99, 'N', r.effective_at
               FROM lab_report AS r, generate_series(0, $1 - 1) AS k
               WHERE length(r.public_id) = 16""",
            OBSERVATIONS_PER_REPORT,
        )
        timings["observations"] = time.perf_counter() - started

        started = time.perf_counter()
        await _sealed_audit_rows(db, audit_rows, first, patients)
        timings["audit rows"] = time.perf_counter() - started

        # A real clinic's tables are vacuumed: without it autovacuum walks the freshly loaded
        # rows in the middle of the measurement (the visibility map, insert-driven vacuum).
        started = time.perf_counter()
        await db.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = time.perf_counter() - started
    finally:
        await db.close()
    return timings


async def _sealed_audit_rows(db: asyncpg.Connection, count: int, first: int, span: int) -> None:
    """Rows as the sealer would have left them: each hashed onto the chain's head in turn."""
    from app.services.audit import audit_row_hash

    head = await db.fetchrow("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1")
    place, previous = int(head["last_seq"]), str(head["last_hash"])
    start = datetime.now(UTC) - timedelta(days=365)
    columns = (
        "occurred_at", "actor_account", "actor_staff", "patient", "action", "resource_type",
        "resource_id", "ip", "user_agent", "seal_seq", "row_hash",
    )  # fmt: skip
    done = 0
    while done < count:
        records = []
        for n in range(done, min(count, done + COPY_CHUNK)):
            row = {
                "occurred_at": start + timedelta(seconds=n * 1.5),
                "actor_account": None,
                "actor_staff": None,
                "patient": first + n % span,
                "action": "results.view",
                "resource_type": "lab_report",
                "resource_id": f"re{n:014x}",
                "ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0 (bench)",
            }
            place += 1
            previous = audit_row_hash(previous, row)
            records.append((*row.values(), place, previous))
        await db.copy_records_to_table("audit_event", records=records, columns=columns)
        done += len(records)
    await db.execute(
        "UPDATE audit_chain_head SET last_seq = $1, last_hash = $2 WHERE id = 1", place, previous
    )


async def _vacuum() -> None:
    """What autovacuum would do after a bulk load, done now so it does not run mid-measure."""
    db = await _connect()
    try:
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()


async def _sizes() -> dict[str, int]:
    db = await _connect()
    try:
        return {
            table: int(await db.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in ("patient", "lab_report", "lab_observation", "audit_event")
        }
    finally:
        await db.close()


async def _pages(database_url: str = SCALE_URL) -> list[tuple[str, str]]:
    db = await _connect(database_url)
    try:
        report, test = await db.fetchrow(
            """SELECT r.public_id, o.public_id FROM lab_report r
               JOIN lab_observation o ON o.report = r.id
               JOIN patient p ON p.id = r.patient
               WHERE p.mrn = 'RFH-100001' AND r.released_at IS NOT NULL
               ORDER BY r.effective_at DESC LIMIT 1"""
        )
    finally:
        await db.close()
    return [("home", "/home"), ("results", "/results"), ("test page", f"/results/{report}/{test}")]


def _measure(
    url: str, users: list[int], seconds: float, database_url: str = SCALE_URL
) -> dict[tuple[str, int], Any]:
    from bench.load import load

    cookies = sign_in(url)
    figures = {}
    for name, path in asyncio.run(_pages(database_url)):
        for level in users:
            figures[(name, level)] = asyncio.run(load(url, path, cookies, level, seconds))
    return figures


# --- query plans ----------------------------------------------------------------------


def _log_file() -> Path | None:
    logs = sorted(POSTGRES_LOG.glob("postgresql-*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


async def _auto_explain(on: bool) -> None:
    name = urlsplit(SCALE_URL).path.lstrip("/")
    db = await _connect()
    try:
        if on:
            await db.execute(
                f"ALTER DATABASE \"{name}\" SET session_preload_libraries = 'auto_explain'"
            )
            await db.execute(f'ALTER DATABASE "{name}" SET auto_explain.log_min_duration = 0')
            await db.execute(f'ALTER DATABASE "{name}" SET auto_explain.log_analyze = on')
            await db.execute(f'ALTER DATABASE "{name}" SET auto_explain.log_format = json')
        else:
            await db.execute(f'ALTER DATABASE "{name}" RESET ALL')
    finally:
        await db.close()


def _nodes(node: dict[str, Any], depth: int = 0) -> list[str]:
    """One line per plan node: its type, the table or index it reads, its actual rows."""
    what = node.get("Index Name") or node.get("Relation Name") or ""
    line = f"{'  ' * depth}{node['Node Type']} {what}".rstrip()
    line += f" (rows {node.get('Actual Rows', '?')}, {node.get('Actual Total Time', 0):.3f} ms)"
    lines = [line]
    for child in node.get("Plans", []):
        lines += _nodes(child, depth + 1)
    return lines


def _plans(url: str) -> list[str]:
    """Each page once, with every statement's plan logged; the plans, in order."""
    log = _log_file()
    if log is None or not os.access(log, os.R_OK):
        return [f"(no readable PostgreSQL log under {POSTGRES_LOG}: plans not shown)"]
    cookies = sign_in(url)
    pages = asyncio.run(_pages())
    offset = log.stat().st_size
    with httpx.Client(base_url=url, cookies=cookies) as client:
        for _, path in pages:
            client.get(path).raise_for_status()
    time.sleep(1.0)
    with log.open(encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        text = handle.read()
    plans = []
    for chunk in text.split("plan:")[1:]:
        # The JSON runs until the next log line (which starts with its timestamp).
        body = re.split(r"\n(?=\d{4}-\d\d-\d\d )", chunk, maxsplit=1)[0]
        try:
            entry = json.loads(body)
        except ValueError:
            continue
        query = " ".join(str(entry.get("Query Text", "")).split())
        if not query or query.startswith("SELECT pg_advisory"):
            continue
        plans.append(f"{query[:150]}\n      " + "\n      ".join(_nodes(entry["Plan"])))
    return plans


# --- several processes ------------------------------------------------------------------


class _FakeSMS(BaseHTTPRequestHandler):
    """Twilio's Messages endpoint, counting each body it receives."""

    received: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        with self.lock:
            self.received[form.get("Body", [""])[0]] += 1
        payload = b'{"sid": "SM-bench"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


async def _queue_texts(count: int) -> list[str]:
    db = await _connect()
    try:
        bodies = [f"Bench text {n}" for n in range(count)]
        # A database kept from an earlier run (--reuse) holds that run's texts: start afresh.
        await db.execute("DELETE FROM outbox WHERE kind = 'bench'")
        await db.executemany(
            """INSERT INTO outbox (public_id, channel, recipient, body, body_length, kind,
                   idempotency_key, status, attempts, next_attempt_at, created_at)
               VALUES ($1, 'sms', '+15555550100', $2, length($2), 'bench', $1, 'pending', 0,
                   now(), now())""",
            [(f"bench{n:011d}", body) for n, body in enumerate(bodies)],
        )
        return bodies
    finally:
        await db.close()


async def _outbox_states() -> Counter[str]:
    db = await _connect()
    try:
        rows = await db.fetch("SELECT status, count(*) FROM outbox WHERE kind = 'bench' GROUP BY 1")
        return Counter({row[0]: int(row[1]) for row in rows})
    finally:
        await db.close()


def _join_flood(url: str, attempts: int) -> Counter[int]:
    """Poster joins from one address, spread over both web processes by new connections."""
    statuses: Counter[int] = Counter()
    for attempt in range(attempts):
        with httpx.Client(base_url=url, follow_redirects=False) as client:
            page = client.get("/join/MAIN")
            match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
            token = match.group(1) if match else ""
            response = client.post(
                "/join/MAIN",
                data={
                    "_csrf_token": token,
                    "given_name": "Nobody",
                    "family_name": "Here",
                    "birth_date": "1990-01-01",
                    # A new contact each time: only the per-address limit is tried.
                    "contact": f"bench{attempt}@example.org",
                },
            )
            statuses[response.status_code] += 1
    return statuses


def _several_processes() -> bool:
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    sms = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSMS)
    threading.Thread(target=sms.serve_forever, daemon=True).start()
    env = _env(
        PORTAL_REDIS_URL=REDIS_URL,
        PORTAL_SMS_PROVIDER="twilio",
        PORTAL_TWILIO_ACCOUNT_SID="ACbench",
        PORTAL_TWILIO_AUTH_TOKEN="bench",  # noqa: S106 (the fake provider takes any)
        PORTAL_TWILIO_FROM="+15555550199",
        PORTAL_TWILIO_BASE_URL=f"http://127.0.0.1:{sms.server_address[1]}",
        PORTAL_EMBEDDED_WORKER="0",
    )
    bodies = asyncio.run(_queue_texts(MESSAGES))
    worker = [sys.executable, "-m", "app.cli", "worker"]
    ok = True
    with _serve(workers=2, env=env) as url, _processes([worker, worker], env):
        started = time.perf_counter()
        while time.perf_counter() - started < 120:
            states = asyncio.run(_outbox_states())
            if states.get("sent", 0) + states.get("dead", 0) >= MESSAGES:
                break
            time.sleep(0.5)
        drained = time.perf_counter() - started
        statuses = _join_flood(url, 30)
    sms.shutdown()
    twice = sum(1 for body in bodies if _FakeSMS.received[body] > 1)
    missing = sum(1 for body in bodies if _FakeSMS.received[body] == 0)
    states = asyncio.run(_outbox_states())
    print(
        f"  texts: {MESSAGES} queued, {states.get('sent', 0)} sent in {drained:.1f} s by two"
        f" workers; delivered twice: {twice}; never delivered: {missing}"
    )
    refused = statuses.get(429, 0)
    print(
        f"  poster joins from one address across 2 web processes: {sum(statuses.values())} tried,"
        f" {refused} refused (limit 10 an hour: expect 20); statuses {dict(statuses)}"
    )
    ok &= twice == 0 and missing == 0 and refused == 20
    return ok


# --- the run -----------------------------------------------------------------------------


_SEAL = """
import asyncio, time
from app.db import close_pool, open_pool
from app.services.audit import audit_seal_all

async def seal():
    await open_pool()
    try:
        started = time.perf_counter()
        sealed = await audit_seal_all(holder="bench")
        print(sealed, time.perf_counter() - started)
    finally:
        await close_pool()

asyncio.run(seal())
"""


def _seal_rate(rows: int) -> tuple[int, float]:
    """Unsealed rows as busy pages leave them, then the sealer until none wait (in a process
    of its own, configured for this database like a worker)."""

    async def insert() -> None:
        db = await _connect()
        try:
            await db.execute(
                """INSERT INTO audit_event (occurred_at, patient, action, resource_type,
                       resource_id, ip, user_agent, row_hash)
                   SELECT now(), (SELECT min(id) FROM patient), 'results.view', 'lab_report',
                       'x', '203.0.113.9', 'bench', ''
                   FROM generate_series(1, $1)""",
                rows,
            )
        finally:
            await db.close()

    asyncio.run(insert())
    result = subprocess.run(
        [sys.executable, "-c", _SEAL], cwd=ROOT, env=_env(), check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    sealed, seconds = result.stdout.split()[-2:]
    return int(sealed), float(seconds)


def _table(title: str, small: dict[Any, Any], large: dict[Any, Any] | None) -> None:
    print(title)
    print(f"  {'page':<12}{'users':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'p50 x small':>13}")  # fmt: skip
    for key, figures in (large or small).items():
        name, users = key
        ratio = ""
        if large is not None:
            ratio = f"{figures.percentile(0.5) / small[key].percentile(0.5):.2f}"
        print(
            f"  {name:<12}{users:>6}{figures.rps:>9.0f}{figures.percentile(0.5):>9.1f}"
            f"{figures.percentile(0.95):>9.1f}{figures.percentile(0.99):>9.1f}"
            f"{figures.errors:>8}{ratio:>13}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=1.0, help="share of the large sizes")
    parser.add_argument("--seconds", type=float, default=5.0, help="per page and level")
    parser.add_argument("--users", default="1,20", help="concurrency levels")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the large database an earlier run grew"
    )
    args = parser.parse_args(argv)
    users = [int(level) for level in args.users.split(",")]
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if args.reuse:
        small_url = _small_url()
        asyncio.run(_recreate_database(small_url))
        _portal("seed-demo", "--reset", env=_env(small_url))
        with _serve(env=_env(small_url)) as url:
            small = _measure(url, users, args.seconds, small_url)
        _table("Demo clinic (its own database):", small, None)
        sizes = asyncio.run(_sizes())
        if sizes["patient"] < PATIENTS * args.factor * 0.9:
            print(f"{SCALE_URL} holds {sizes['patient']:,} patients: run without --reuse first")
            return 1
        asyncio.run(_vacuum())
        print("Kept: " + ", ".join(f"{count:,} {table}" for table, count in sizes.items()))
    else:
        asyncio.run(_recreate_database())
        _portal("seed-demo", "--reset")
        with _serve() as url:
            small = _measure(url, users, args.seconds)
        _table("Demo clinic:", small, None)

        timings = asyncio.run(_grow(args.factor))
        sizes = asyncio.run(_sizes())
        print(
            "Grown to: "
            + ", ".join(f"{count:,} {table}" for table, count in sizes.items())
            + " ("
            + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items())
            + ")"
        )
    with _serve() as url:
        large = _measure(url, users, args.seconds)
    _table("Large clinic:", small, large)

    asyncio.run(_auto_explain(True))
    try:
        with _serve() as url:
            plans = _plans(url)
    finally:
        asyncio.run(_auto_explain(False))
    print(f"Query plans, one request per page ({len(plans)} statements):")
    for plan in plans:
        print("  " + plan)

    started = time.perf_counter()
    verified = _portal("audit", "verify")
    seconds = time.perf_counter() - started
    checked = re.search(r"(\d+) sealed rows? checked", verified.stdout)
    rows = int(checked.group(1)) if checked else 0
    print(f"portal audit verify: {rows:,} rows in {seconds:.0f} s, {rows / seconds:,.0f} rows/s")
    sealed, seal_seconds = _seal_rate(50_000)
    print(f"sealer: {sealed:,} rows in {seal_seconds:.1f} s, {sealed / seal_seconds:,.0f} rows/s")

    print("Two web processes and two workers on one PostgreSQL and Redis:")
    ok = _several_processes()
    return 0 if ok and all(f.errors == 0 for f in large.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
