"""What the benchmarks share: start a server the way production does, sign in a persona."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


@contextmanager
def running(
    command: list[str], env: dict[str, str], port: int, health: str = "/healthz"
) -> Iterator[str]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, health)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def portal_server(database_url: str | None = None, workers: int = 1) -> Iterator[str]:
    """`portal seed-demo` then `portal serve` on a free port; SQLite in a temporary folder
    unless a PostgreSQL URL is given (its demo data is reset)."""
    data_dir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_DATABASE_URL": database_url or f"sqlite:///{data_dir}/portal.db",
        "PORTAL_DEMO": "1",
        "PORTAL_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--reset"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    try:
        with running(command, env, port) as url:
            yield url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def floor_server() -> Iterator[str]:
    """bench/floor_app.py (the home template from memory, through the portal's middleware),
    served like the portal: uvicorn, one worker, on a migrated, empty SQLite file."""
    data_dir = Path(tempfile.mkdtemp(prefix="portal-floor-"))
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_DATABASE_URL": f"sqlite:///{data_dir}/portal.db",
        "PORTAL_EMBEDDED_WORKER": "0",
        "PORTAL_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    try:
        with running(command, env, port) as url:
            yield url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def sign_in(url: str, persona: str = "maria") -> dict[str, str]:
    """The demo sign-in through the real form; returns the cookies a browser would hold."""
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        page = client.get(f"/demo/sign-in/{persona}")
        match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        if match is None:
            raise RuntimeError("demo sign-in page has no form")
        response = client.post(f"/demo/sign-in/{persona}", data={"_csrf_token": match.group(1)})
        if response.status_code != 303:
            raise RuntimeError(f"sign-in failed: {response.status_code}")
        return dict(client.cookies)
