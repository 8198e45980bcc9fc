"""Where a page's time goes, without the network: the whole app in this process, called
through ASGI in a loop, under cProfile (or just timed).

A fresh demo clinic (`portal seed-demo`) on SQLite in a temporary folder, or on the
PostgreSQL database PORTAL_BENCH_POSTGRES_URL names (`--postgres`; its demo data is reset).
The signed-in pages are fetched as Maria, through the real demo sign-in form.

    .venv/bin/python -m bench.profile / /home --requests 1000
    .venv/bin/python -m bench.profile /home --gzip --sort tottime --top 40
    .venv/bin/python -m bench.profile / /home --time-only      # µs per request, no profiler

The CPU time this process spent (SQLite's threads included, PostgreSQL's server not) moves
less than the wall-clock time when other work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUND = 100


def _environment(postgres: bool) -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="portal-profile-"))
    os.environ["PORTAL_DATA_DIR"] = str(data_dir)
    os.environ["PORTAL_DATABASE_URL"] = (
        os.environ.get("PORTAL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        if postgres
        else f"sqlite:///{data_dir}/portal.db"
    )
    os.environ["PORTAL_DEMO"] = "1"
    os.environ["PORTAL_EMBEDDED_WORKER"] = "0"
    os.environ["PORTAL_LOG_LEVEL"] = "WARNING"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--reset"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return data_dir


class Client:
    """Just enough of a browser for GET and a form POST through the ASGI callable."""

    def __init__(self, app: Any, gzip: bool) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.gzip = gzip

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
        if self.gzip:
            headers.append((b"accept-encoding", b"gzip, deflate, br"))
        if self.cookies:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers.append((b"cookie", cookie.encode()))
        if body:
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
            headers.append((b"content-length", str(len(body)).encode()))
        path_only, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path_only,
            "raw_path": path_only.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        for name, value in response_headers:
            if name.lower() == b"set-cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value.decode("latin-1"))
                for key, morsel in jar.items():
                    if morsel.value:
                        self.cookies[key] = morsel.value
                    else:
                        self.cookies.pop(key, None)
        return status, response_headers, b"".join(chunks)


async def _sign_in(client: Client) -> None:
    gzip, client.gzip = client.gzip, False
    _, _, page = await client.request("GET", "/demo/sign-in/maria")
    match = re.search(rb'name="_csrf_token" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("demo sign-in page has no form")
    status, _, _ = await client.request(
        "POST", "/demo/sign-in/maria", b"_csrf_token=" + match.group(1)
    )
    if status != 303:
        raise RuntimeError(f"sign-in failed: {status}")
    client.gzip = gzip


async def _run(args: argparse.Namespace) -> None:
    from app.main import create_app

    app = create_app()
    async with app.lifespan():
        anonymous = Client(app, args.gzip)
        signed_in = Client(app, args.gzip)
        await _sign_in(signed_in)
        for path in args.paths:
            client = signed_in if path not in {"/", "/offline"} else anonymous
            for _ in range(50):  # warm up: templates compiled, caches filled
                status, _, body = await client.request("GET", path)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            if args.time_only:
                await _time(client, path, args.requests, len(body))
                continue
            profiler = cProfile.Profile()
            started, cpu_started = time.perf_counter(), time.process_time()
            profiler.enable()
            for _ in range(args.requests):
                await client.request("GET", path)
            profiler.disable()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            each, cpu_each = elapsed / args.requests * 1e6, cpu / args.requests * 1e6
            print(
                f"{path}: {args.requests} requests under cProfile, {each:.0f} µs each,"
                f" {cpu_each:.0f} µs of this process's CPU"
            )
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


async def _time(client: Client, path: str, requests: int, size: int) -> None:
    """Rounds of 100 requests: the fastest round is the one the other jobs on the machine
    disturbed least, the median what a request usually cost."""
    walls, cpus = [], []
    for _ in range(max(1, requests // ROUND)):
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(ROUND):
            await client.request("GET", path)
        walls.append((time.perf_counter() - started) / ROUND * 1e6)
        cpus.append((time.process_time() - cpu_started) / ROUND * 1e6)
    print(
        f"{path}: {len(walls) * ROUND} requests, body {size:,} bytes; µs per request,"
        f" fastest round / median: wall {min(walls):.0f} / {statistics.median(walls):.0f},"
        f" CPU {min(cpus):.0f} / {statistics.median(cpus):.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--gzip", action="store_true", help="send Accept-Encoding: gzip")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--time-only", action="store_true")
    args = parser.parse_args()
    data_dir = _environment(args.postgres)
    try:
        asyncio.run(_run(args))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
