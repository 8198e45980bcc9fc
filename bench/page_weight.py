"""Page weight: bytes over the wire (compressed) for each main page's first load.

Prints HTML, CSS and JS separately against the budget (QUALITY.md): at most 60 KB for
HTML + CSS + JS, of which our own JavaScript at most 5 KB.
"""

from __future__ import annotations

import gzip
import re
import sys
from html.parser import HTMLParser

import httpx

from bench.harness import portal_server, sign_in

BUDGET_TOTAL = 60 * 1024
BUDGET_OWN_JS = 5 * 1024
PUBLIC_PAGES = ["/", "/offline"]
PATIENT_PAGES = ["/home", "/results", "/visits", "/messages", "/more"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.css: list[str] = []
        self.js: list[str] = []
        self.scripts_to_add: list[str] = []
        self.start_script = ""
        self.in_start_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.css.append(str(values["href"]))
        if tag == "script" and values.get("src"):
            self.js.append(str(values["src"]))
        if tag == "script" and values.get("data-scripts"):
            # Added by the inline start.js after the first paint, some only where the page has
            # what they work on ("url@[data-x],[data-y]"): still part of the first load.
            self.scripts_to_add = str(values["data-scripts"]).split()
            self.in_start_script = True

    def handle_data(self, data: str) -> None:
        if self.in_start_script:
            self.start_script += data

    def handle_endtag(self, tag: str) -> None:
        self.in_start_script = False


def _wire_bytes(client: httpx.Client, path: str) -> tuple[int, str]:
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip, br"}) as response:
        response.read()
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        return response.num_bytes_downloaded, response.text


def measure(client: httpx.Client, path: str) -> dict[str, int]:
    html_bytes, html = _wire_bytes(client, path)
    assets = _Assets()
    assets.feed(html)
    css = sum(_wire_bytes(client, href)[0] for href in assets.css)
    body = re.sub(r"<script.*?</script>", "", html, flags=re.DOTALL)
    for entry in assets.scripts_to_add:
        src, _, selector = entry.partition("@")
        names = re.findall(r"\[([a-z-]+)\]", selector)
        if not selector or any(f" {name}" in body for name in names):
            assets.js.append(src)
    js_sizes = {src: _wire_bytes(client, src)[0] for src in assets.js}
    # The inline start.js travels in the HTML; counted again here as our own JavaScript.
    inline_js = len(gzip.compress(assets.start_script.encode()))
    own_js = inline_js + sum(size for src, size in js_sizes.items() if "/vendor/" not in src)
    return {"html": html_bytes, "css": css, "js": sum(js_sizes.values()), "own_js": own_js}


def main() -> int:
    over = []
    with portal_server() as url:
        cookies = sign_in(url)
        print(f"{'page':<12}{'HTML':>8}{'CSS':>8}{'JS':>8}{'own JS':>8}{'total':>9}  budget 60 KB")
        for path in PUBLIC_PAGES + PATIENT_PAGES:
            with httpx.Client(
                base_url=url, cookies=cookies if path in PATIENT_PAGES else None
            ) as client:
                sizes = measure(client, path)
            total = sizes["html"] + sizes["css"] + sizes["js"]
            verdict = "ok" if total <= BUDGET_TOTAL and sizes["own_js"] <= BUDGET_OWN_JS else "OVER"
            if verdict != "ok":
                over.append(path)
            print(
                f"{path:<12}{sizes['html']:>8}{sizes['css']:>8}{sizes['js']:>8}{sizes['own_js']:>8}"
                f"{total:>9}  {total / BUDGET_TOTAL:.0%} {verdict}"
            )
    print("bytes are compressed bytes over the wire (gzip), first load with an empty cache")
    if over:
        print("over budget: " + ", ".join(over))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
