"""QR posters: a page at true size, in both languages, whose code opens the join page."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import segno
from babel.support import NullTranslations

from app import i18n
from app.services.console.posters import (
    HEADLINE,
    HELP,
    PAPER,
    QR_MIN_MM,
    QR_QUIET_MODULES,
    STEPS,
    PosterLocation,
    join_url,
    join_url_short,
    location_codes,
    poster_layout,
    poster_location,
)
from app.templating import poster_svg
from tests.factories import (
    make_location,
    unique,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://portal.example.org"
SVG = "{http://www.w3.org/2000/svg}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")
PLACE = re.compile(r"translate\(([\d.]+) ([\d.]+)\) scale\(([\d.]+)\)")

NORTH = PosterLocation(
    code="NORTH",
    name="Northside Clinic",
    address_line="45 Oak Avenue",
    city="Springfield",
    state="MA",
    postal_code="01107",
    phone="(555) 010-0200",
)


def _render(location: PosterLocation = NORTH, size: str = "letter", base: str = BASE) -> str:
    return poster_svg(
        poster_layout(location=location, clinic_name="Riverside & Co", base_url=base, size=size)
    )


def _parse(document: str) -> ET.Element:
    return ET.fromstring(document)  # noqa: S314  (the poster this test just made, not input)


def _texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}text"))


def _modules(path: str) -> set[tuple[int, int]]:
    """The dark modules a path of 1-high runs draws, checking it holds nothing else."""
    runs = RUN.findall(path)
    assert "".join(f"M{x} {y}h{w}v1h-{back}z" for x, y, w, back in runs) == path
    dark: set[tuple[int, int]] = set()
    for x, y, width, back in runs:
        assert width == back
        dark.update((int(x) + step, int(y)) for step in range(int(width)))
    return dark


def _segno_modules(qr: segno.QRCode) -> set[tuple[int, int]]:
    return {(x, y) for y, row in enumerate(qr.matrix) for x, dark in enumerate(row) if dark}


def test_the_code_opens_the_join_page_and_the_short_form_has_no_scheme() -> None:
    assert join_url("https://portal.example.org/", "MAIN") == "https://portal.example.org/join/MAIN"
    assert join_url_short("https://portal.example.org", "MAIN") == "portal.example.org/join/MAIN"
    assert join_url_short("http://localhost:8000", "NORTH") == "localhost:8000/join/NORTH"


async def test_a_location_is_found_by_its_code_in_any_case() -> None:
    code = (await make_location(code=unique("Pq"), name="Elm Street Clinic")).code
    found = await poster_location(f"  {code.lower()} ")
    assert found is not None
    assert (found.code, found.name, found.phone) == (code, "Elm Street Clinic", "(555) 000-0001")
    assert found.address == "1 Test Street, Springfield, MA 01103"
    assert await poster_location("no-such-place") is None
    assert await poster_location("") is None
    codes = await location_codes()
    assert code in codes
    assert codes == sorted(codes)


@pytest.mark.parametrize(
    ("size", "width_mm", "height_mm"), [("letter", "215.9mm", "279.4mm"), ("a4", "210mm", "297mm")]
)
def test_the_poster_is_one_page_at_true_size(size: str, width_mm: str, height_mm: str) -> None:
    root = _parse(_render(size=size))
    width, height = PAPER[size]
    assert root.tag == f"{SVG}svg"
    assert (root.attrib["width"], root.attrib["height"]) == (width_mm, height_mm)
    assert [float(n) for n in root.attrib["viewBox"].split()] == [0, 0, width, height]
    assert root.attrib["font-family"] == "DejaVu Sans, Arial, sans-serif"
    for text in _texts(root):
        size_mm = float(text.attrib["font-size"])
        assert 3 <= size_mm <= 10
        assert size_mm < float(text.attrib["y"]) < height - 5


def test_an_unknown_paper_size_is_refused() -> None:
    with pytest.raises(ValueError, match="paper size"):
        _render(size="tabloid")


def test_the_poster_names_the_place_and_says_what_to_do() -> None:
    root = _parse(_render())
    shown = [text.text for text in _texts(root)]
    for line in (
        "Riverside & Co",
        "Northside Clinic",
        "45 Oak Avenue, Springfield, MA 01107",
        "portal.example.org/join/NORTH",
        HEADLINE,
        *STEPS,
        HELP % {"phone": "(555) 010-0200"},
    ):
        assert line in shown
    assert [text for text in shown if text in {"1", "2", "3"}] == ["1", "2", "3"]
    # Headline, three steps and help: each said in English, then in Spanish.
    languages = [text.attrib[XML_LANG] for text in _texts(root) if XML_LANG in text.attrib]
    assert languages == ["en", "es"] * 5


def test_the_short_address_is_the_largest_text_under_the_code() -> None:
    root = _parse(_render())
    sizes = {text.text: float(text.attrib["font-size"]) for text in _texts(root)}
    assert sizes["portal.example.org/join/NORTH"] >= 8
    assert sizes["portal.example.org/join/NORTH"] > max(sizes[step] for step in STEPS)


def test_without_a_phone_number_there_is_no_help_line() -> None:
    quiet = dataclasses.replace(NORTH, phone="")
    shown = [text.text or "" for text in _texts(_parse(_render(quiet)))]
    assert not any("Call" in line for line in shown)


def test_a_phone_kept_in_e164_prints_as_people_read_it() -> None:
    e164 = dataclasses.replace(NORTH, phone="+15550100200")
    shown = [text.text for text in _texts(_parse(_render(e164)))]
    assert HELP % {"phone": "(555) 010-0200"} in shown


def test_names_are_escaped() -> None:
    odd = dataclasses.replace(NORTH, name='Smith & Sons <Kids> "Clinic"')
    document = _render(odd)
    assert "Smith &amp; Sons &lt;Kids&gt;" in document
    assert "<Kids>" not in document
    shown = [text.text for text in _texts(_parse(document))]
    assert 'Smith & Sons <Kids> "Clinic"' in shown
    assert "Riverside & Co" in shown


@pytest.mark.parametrize("size", ["letter", "a4"])
def test_the_code_drawn_is_segnos_code_for_the_join_page(size: str) -> None:
    root = _parse(_render(size=size))
    path = root.find(f"{SVG}g[@id='qr']/{SVG}path")
    assert path is not None
    expected = segno.make(join_url(BASE, "NORTH"), error="q", micro=False, boost_error=False)
    assert _modules(path.attrib["d"]) == _segno_modules(expected)

    # Placed in mm: at least QR_MIN_MM wide, centred, with its quiet zone clear of any text.
    place = PLACE.fullmatch(path.attrib["transform"])
    assert place is not None
    x, y, module = (float(n) for n in place.groups())
    modules = len(expected.matrix)
    width, height = PAPER[size]
    assert module * modules >= QR_MIN_MM
    assert x + module * modules <= width
    assert y + module * modules <= height
    assert abs((x + module * modules / 2) - width / 2) < 0.01
    quiet = QR_QUIET_MODULES * module
    top, bottom = y - quiet, y + module * modules + quiet
    for text in _texts(root):
        baseline, size_mm = float(text.attrib["y"]), float(text.attrib["font-size"])
        # Capitals and accents reach 0.8 of the font size above the baseline.
        assert baseline <= top or baseline - 0.8 * size_mm >= bottom - 0.01, text.text


def test_a_short_address_still_gets_a_large_code() -> None:
    # A small QR version would leave the symbol under the minimum: a larger one is drawn.
    base = "http://localhost:8000"
    root = _parse(_render(base=base))
    path = root.find(f"{SVG}g[@id='qr']/{SVG}path")
    assert path is not None
    place = PLACE.fullmatch(path.attrib["transform"])
    assert place is not None
    drawn = _modules(path.attrib["d"])
    modules = max(x for x, _ in drawn) + 1
    version = (modules - 17) // 4
    url = join_url(base, "NORTH")
    assert version > int(segno.make(url, error="q", boost_error=False).version)
    expected = segno.make(url, error="q", version=version, boost_error=False)
    assert drawn == _segno_modules(expected)
    assert float(place.group(3)) * modules >= QR_MIN_MM


def test_the_spanish_lines_come_from_the_spanish_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    class Catalog(NullTranslations):
        def gettext(self, message: str) -> str:
            return f"ES {message}"

    def translations_for(locale: str) -> NullTranslations:
        return Catalog() if locale == "es" else NullTranslations()

    monkeypatch.setattr(i18n, "translations_for", translations_for)
    root = _parse(_render())
    spanish = [text.text for text in _texts(root) if text.attrib.get(XML_LANG) == "es"]
    assert spanish == [
        f"ES {HEADLINE}",
        *(f"ES {step}" for step in STEPS),
        f"ES {HELP % {'phone': '(555) 010-0200'}}",
    ]
    english = [text.text for text in _texts(root) if text.attrib.get(XML_LANG) == "en"]
    assert english == [HEADLINE, *STEPS, HELP % {"phone": "(555) 010-0200"}]


async def _portal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The `portal` command in its own process, on this run's database."""
    env = {**os.environ, "PORTAL_BASE_URL": BASE, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_writes_the_poster(tmp_path: Path) -> None:
    code = (await make_location(code=unique("Wall"), name="Waiting Room & Lab")).code
    status, out, err = await _portal(
        "poster", "--location", code.lower(), "--size", "a4", cwd=tmp_path
    )
    assert status == 0, err
    written = tmp_path / f"poster-{code}-a4.svg"
    assert f"poster-{code}-a4.svg" in out
    assert f"{BASE}/join/{code}" in out
    root = _parse(written.read_text(encoding="utf-8"))
    assert root.attrib["width"] == "210mm"
    assert "Waiting Room & Lab" in [text.text for text in _texts(root)]

    chosen = tmp_path / "wall.svg"
    status, out, err = await _portal(
        "poster", "--location", code, "--out", str(chosen), cwd=tmp_path
    )
    assert status == 0, err
    assert str(chosen) in out
    assert _parse(chosen.read_text(encoding="utf-8")).attrib["width"] == "215.9mm"


async def test_the_command_refuses_an_unknown_location(tmp_path: Path) -> None:
    known = (await make_location(code=unique("Kn"))).code
    status, _, err = await _portal("poster", "--location", "NOWHERE", cwd=tmp_path)
    assert status == 2
    assert "NOWHERE" in err
    assert known in err
    assert os.listdir(tmp_path) == []
