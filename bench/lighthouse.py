"""Lighthouse (mobile, simulated throttling) on the start page and the signed-in home.

Serves a freshly seeded demo clinic the way `portal serve` does, signs Maria in through the
real form for `/home`, runs Lighthouse RUNS times on each page and prints the four category
scores with LCP, FCP, TBT and CLS per run, then the median LCP per page.

Lighthouse is not a dependency of the portal (Node and a few hundred MB); install it once:
    mkdir -p /tmp/lh && cd /tmp/lh && npm install lighthouse@12.8.2
then: .venv/bin/python -m bench.lighthouse [RUNS]
LIGHTHOUSE (default /tmp/lh/node_modules/.bin/lighthouse) and CHROME_PATH (default
/usr/bin/chromium) say where they are. Run it on an idle machine: the simulated timings
scale with the CPU time Chrome observes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import portal_server, sign_in

PAGES = ("/", "/home")
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")


def run_once(url: str, headers: Path | None, out: Path) -> dict[str, Any]:
    command = [
        os.environ.get("LIGHTHOUSE", "/tmp/lh/node_modules/.bin/lighthouse"),  # noqa: S108
        url,
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        "--quiet",
        "--output=json",
        f"--output-path={out}",
    ]
    if headers is not None:
        command.append(f"--extra-headers={headers}")
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    # Lighthouse now and then loses its own trace ("NO_NAVSTART: run Lighthouse again").
    for _ in range(3):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0 or "run Lighthouse again" not in done.stderr:
            break
    if done.returncode != 0:
        raise RuntimeError(f"lighthouse failed on {url}: {done.stderr[-1500:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    lcps: dict[str, list[float]] = {page: [] for page in PAGES}
    with tempfile.TemporaryDirectory(prefix="portal-lighthouse-") as folder, portal_server() as url:
        cookies = sign_in(url)
        headers = Path(folder) / "cookie.json"
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        headers.write_text(json.dumps({"cookie": cookie}))
        print("page    run  perf  a11y  bp  seo    LCP    FCP   TBT    CLS  CPU index")
        for run in range(runs):
            for page in PAGES:
                report = run_once(
                    url + page, headers if page != "/" else None, Path(folder) / "report.json"
                )
                scores = [round(report["categories"][key]["score"] * 100) for key in CATEGORIES]
                audits = report["audits"]
                lcp = audits["largest-contentful-paint"]["numericValue"] / 1000
                lcps[page].append(lcp)
                print(
                    f"{page:<8}{run:>3}  {scores[0]:>4}  {scores[1]:>4}"
                    f"  {scores[2]:>3}  {scores[3]:>3}"
                    f"  {lcp:5.2f}s"
                    f"  {audits['first-contentful-paint']['numericValue'] / 1000:4.2f}s"
                    f"  {audits['total-blocking-time']['numericValue']:4.0f}"
                    f"  {audits['cumulative-layout-shift']['numericValue']:5.3f}"
                    f"  {report['environment']['benchmarkIndex']:9.0f}",
                    flush=True,
                )
    for page, values in lcps.items():
        print(f"{page}: median LCP {statistics.median(values):.2f} s over {len(values)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
