"""Load: the signed-in home page under concurrent users, next to bare Litestar and the floor.

Each target is served by uvicorn in its own process, one worker, and loaded from this
process over keep-alive HTTP/1.1 connections on loopback, for a fixed number of seconds
per concurrency level. Prints p50/p95/p99 latency, requests per second, errors, and each
page's throughput as a ratio of two baselines measured in the same run: the bare Litestar
text response, and the rendering floor (bench/floor_app.py: the same home template from
in-memory data through the portal's own middleware, no database).
Budget (QUALITY.md), home at 20 users: PostgreSQL p95 <= 60 ms, SQLite p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from bench.floor_app import FLOOR_PATH
from bench.harness import floor_server, free_port, portal_server, running, sign_in

POSTGRES_URL = os.environ.get(
    "PORTAL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class Figures:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _one_user(host: str, port: int, request: bytes, until: float, figures: Figures) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            figures.latencies.append(time.perf_counter() - started)
            figures.requests += 1
            if not status_line.startswith(b"HTTP/1.1 200"):
                figures.errors += 1
    finally:
        writer.close()


async def load(
    url: str, path: str, cookies: dict[str, str], users: int, seconds: float, gzip: bool = False
) -> Figures:
    parts = urlsplit(url)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: bench\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        # As a browser asks: the page then also costs its compression.
        + ("Accept-Encoding: gzip, deflate, br\r\n" if gzip else "")
        + "\r\n"
    ).encode()
    figures = Figures(0, 0, seconds, [])
    # Warm up: one request per connection path, not counted.
    await _one_user(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        request,
        time.perf_counter() + 0.5,
        Figures(0, 0, 1, []),
    )
    until = time.perf_counter() + seconds
    await asyncio.gather(
        *(
            _one_user(parts.hostname or "127.0.0.1", parts.port or 80, request, until, figures)
            for _ in range(users)
        )
    )
    return figures


def _print(
    name: str, users: int, figures: Figures, bare_rps: float | None, floor_rps: float | None
) -> None:
    bare = f"{figures.rps / bare_rps:.2f}" if bare_rps else "1.00"
    floor = f"{figures.rps / floor_rps:.2f}" if floor_rps else "-"
    print(
        f"{name:<26}{users:>6}{figures.rps:>9.0f}{figures.percentile(0.50):>9.1f}"
        f"{figures.percentile(0.95):>9.1f}{figures.percentile(0.99):>9.1f}{figures.errors:>8}"
        f"{bare:>8}{floor:>8}"
    )


async def _postgres_reachable() -> bool:
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


def main() -> int:
    if "--scale" in sys.argv[1:]:
        # The large-clinic and several-process run: its own options (bench/scale.py).
        from bench.scale import main as scale_main

        return scale_main([arg for arg in sys.argv[1:] if arg != "--scale"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument("--users", default="1,10,20", help="concurrency levels")
    parser.add_argument(
        "--gzip", action="store_true", help="ask for gzip as browsers do (default: plain bodies)"
    )
    parser.add_argument("--pages", default="landing,home", help="which of landing,home")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="which of sqlite,postgresql"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.users.split(",")]

    columns = ("users", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "/bare", "/floor")
    widths = (6, 9, 9, 9, 9, 8, 8, 8)
    print(f"{'target':<26}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    port = free_port()
    bare: dict[int, float] = {}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    with running(command, dict(os.environ), port, health="/") as url:
        for users in levels:
            figures = asyncio.run(load(url, "/", {}, users, args.seconds, args.gzip))
            bare[users] = figures.rps
            _print("bare Litestar text", users, figures, None, None)
    floor: dict[int, float] = {}
    with floor_server() as url:
        for users in levels:
            figures = asyncio.run(load(url, FLOOR_PATH, {}, users, args.seconds, args.gzip))
            floor[users] = figures.rps
            _print("home floor (no database)", users, figures, bare[users], None)
            failed_floor = figures.errors > 0

    wanted = args.backends.split(",")
    backends: list[tuple[str, str | None]] = [("sqlite", None)] if "sqlite" in wanted else []
    if "postgresql" in wanted:
        if asyncio.run(_postgres_reachable()):
            backends.append(("postgresql", POSTGRES_URL))
        else:
            print("PostgreSQL not reachable: measuring SQLite only")
    pages = args.pages.split(",")
    failed = False
    for backend, database_url in backends:
        with portal_server(database_url) as url:
            cookies = sign_in(url)
            for name, path, jar in (
                (f"landing ({backend})", "/", {}),
                (f"home ({backend})", "/home", cookies),
            ):
                if name.split(" ")[0] not in pages:
                    continue
                for users in levels:
                    figures = asyncio.run(load(url, path, jar, users, args.seconds, args.gzip))
                    _print(name, users, figures, bare[users], floor[users])
                    failed |= figures.errors > 0
    print(
        "/bare, /floor: requests per second divided by bare Litestar's, and by the home floor's,"
        " at the same concurrency in the same run"
    )
    return 1 if failed or failed_floor else 0


if __name__ == "__main__":
    sys.exit(main())
