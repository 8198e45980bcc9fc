"""Printable QR posters for the waiting room: scan, join, no password.

One page per location, English and Spanish together (a printed sheet cannot switch language),
drawn as a standalone SVG in millimetres so it prints at true size on letter or A4 paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import segno
from piccolo.query.functions.string import Lower

from app import i18n
from app.i18n import N_
from app.services.phones import phone_display
from app.tables import Location

PAPER: dict[str, tuple[float, float]] = {"letter": (215.9, 279.4), "a4": (210.0, 297.0)}
POSTER_LOCALES = ("en", "es")

# "q" survives smudges, tape and glare on a wall; boosting would only hide the level chosen.
QR_ERROR = "q"
QR_QUIET_MODULES = 4  # the white border the QR standard asks for around the symbol
QR_MIN_MM = 110.0  # the symbol alone, so a phone finds it from a chair across the room
QR_MAX_VERSION = 40

HEADLINE = N_("Get your health record on your phone")
STEPS = (
    N_("Scan the code with your phone's camera."),
    N_("Enter your name, date of birth, and phone or email."),
    N_("We text or email you a code. No password needed."),
)
HELP = N_("Need help? Call %(phone)s or ask at the front desk.")

# Layout, in mm. Printers leave about 6 mm unprinted at each edge; this keeps clear of it.
MARGIN = 10.0
INK = "#1a1d21"
BRAND = "#0b5f73"
MUTED = "#4d5560"
# Advance widths in ems, (regular, bold), from DejaVu Sans rounded up: a line is sized to fit
# before any renderer sees it, and Arial, the fallback, is narrower still.
_NARROW = frozenset("iljI.,:;'|!")
_SLIM = frozenset("frt()-/ ")
_WIDE = frozenset("mwMW@%")
_EMS_NARROW = (0.3, 0.36)
_EMS_SLIM = (0.42, 0.5)
_EMS_WIDE = (0.98, 1.06)
_EMS_UPPER = (0.74, 0.8)  # capitals and digits
_EMS_OTHER = (0.63, 0.71)  # most lower-case letters


@dataclass(frozen=True)
class PosterLocation:
    code: str
    name: str
    address_line: str
    city: str
    state: str
    postal_code: str
    phone: str

    @property
    def address(self) -> str:
        """One line as on an envelope: '120 River Street, Springfield, MA 01103'."""
        region = " ".join(part for part in (self.state, self.postal_code) if part)
        return ", ".join(part for part in (self.address_line, self.city, region) if part)


@dataclass(frozen=True)
class PosterText:
    text: str
    x: float
    y: float  # baseline
    size: float  # font size
    lang: str = ""  # empty for names and addresses, which are in no language


@dataclass(frozen=True)
class PosterStep:
    number: int
    cx: float
    cy: float
    radius: float
    lines: tuple[PosterText, ...]


@dataclass(frozen=True)
class PosterQR:
    box_x: float  # the white square, quiet zone included
    box_y: float
    box_size: float
    x: float  # the first module's corner
    y: float
    module: float  # one module's side
    size: float  # the symbol without its quiet zone
    path: str  # dark modules in module units, one run per subpath


@dataclass(frozen=True)
class Poster:
    width: float
    height: float
    title: str
    clinic: PosterText
    location: PosterText
    address: PosterText
    rule_y: float
    rule_x1: float
    rule_x2: float
    headline: tuple[PosterText, ...]
    qr: PosterQR
    url: PosterText
    steps: tuple[PosterStep, ...]
    help: tuple[PosterText, ...]
    ink: str = INK
    brand: str = BRAND
    muted: str = MUTED


def join_url(base_url: str, location_code: str) -> str:
    """What the poster's QR code opens: the self-enrollment page for one location."""
    return f"{base_url.rstrip('/')}/join/{quote(location_code, safe='')}"


def join_url_short(base_url: str, location_code: str) -> str:
    """The same address to type by hand: no scheme, e.g. 'portal.example.org/join/MAIN'."""
    url = join_url(base_url, location_code)
    scheme = urlsplit(url).scheme
    return url.removeprefix(f"{scheme}://") if scheme else url


async def poster_location(code: str) -> PosterLocation | None:
    """A location by its code, whatever case it is typed in."""
    wanted = code.strip().lower()
    if not wanted:
        return None
    row = (
        await Location.select(
            Location.code,
            Location.name,
            Location.address_line,
            Location.city,
            Location.state,
            Location.postal_code,
            Location.phone,
        )
        .where(Lower(Location.code) == wanted)
        .first()
    )
    return None if row is None else PosterLocation(**row)


async def location_codes() -> list[str]:
    rows = await Location.select(Location.code).order_by(Location.code)
    return [row["code"] for row in rows]


def poster_layout(
    *, location: PosterLocation, clinic_name: str, base_url: str, size: str
) -> Poster:
    """One page of `size` paper ("letter" or "a4"), laid out in millimetres; app.templating's
    `poster_svg` draws it."""
    if size not in PAPER:
        raise ValueError(f"unknown paper size {size!r}; use one of {', '.join(PAPER)}")
    return _layout(
        paper=PAPER[size],
        location=location,
        clinic_name=clinic_name,
        url=join_url(base_url, location.code),
        short_url=join_url_short(base_url, location.code),
    )


def _translated(msgid: str, **values: str) -> tuple[tuple[str, str], ...]:
    """(locale, text) for each language on the poster, always in the same order."""
    pairs: list[tuple[str, str]] = []
    for locale in POSTER_LOCALES:
        text = i18n.translations_for(locale).gettext(msgid)
        pairs.append((locale, text % values if values else text))
    return tuple(pairs)


def _fit(text: str, size: float, width: float, *, bold: bool = False) -> float:
    """The font size, at most `size`, at which `text` fits on one line `width` wide."""
    column = 1 if bold else 0
    ems = 0.0
    for char in text:
        if char in _NARROW:
            ems += _EMS_NARROW[column]
        elif char in _SLIM:
            ems += _EMS_SLIM[column]
        elif char in _WIDE:
            ems += _EMS_WIDE[column]
        elif char.isupper() or char.isdigit():
            ems += _EMS_UPPER[column]
        else:
            ems += _EMS_OTHER[column]
    return round(min(size, width / ems), 2) if ems else size


def qr_code(url: str, *, box: float) -> segno.QRCode:
    """The code for `url` as drawn in a `box` mm square, quiet zone included.

    A short address fits a small version, whose quiet zone takes a larger share of the box;
    the next version up keeps the symbol itself at least QR_MIN_MM wide.
    """
    qr = segno.make(url, error=QR_ERROR, micro=False, boost_error=False)
    version = int(qr.version)  # a number: only Micro QR versions are strings ("M4")
    while version < QR_MAX_VERSION:
        modules = qr.symbol_size(border=0)[0]
        if box * modules / (modules + 2 * QR_QUIET_MODULES) >= QR_MIN_MM:
            break
        version += 1
        qr = segno.make(url, error=QR_ERROR, version=version, micro=False, boost_error=False)
    return qr


def qr_path(matrix: tuple[bytearray, ...] | list[bytearray]) -> str:
    """Dark modules as one SVG path in module units: a 1-high rectangle per run in a row."""
    parts: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


class _Column:
    """Lines stacked top to bottom on the page, each no wider than the space it has."""

    def __init__(self, *, top: float, x: float, width: float, anchor_middle: bool) -> None:
        self.top = top
        self.x = x
        self.width = width
        self.anchor_middle = anchor_middle

    def line(self, text: str, size: float, lang: str = "", *, bold: bool = False) -> PosterText:
        fitted = _fit(text, size, self.width, bold=bold)
        x = self.x + self.width / 2 if self.anchor_middle else self.x
        placed = PosterText(text, round(x, 2), round(self.top + fitted * 0.8, 2), fitted, lang)
        self.top = placed.y + fitted * 0.3  # the baseline, then the descent
        return placed

    def space(self, gap: float) -> None:
        self.top += gap


def _layout(
    *,
    paper: tuple[float, float],
    location: PosterLocation,
    clinic_name: str,
    url: str,
    short_url: str,
) -> Poster:
    """Text above and below; the QR code takes all the height the text leaves."""
    width, height = paper
    inner = width - 2 * MARGIN
    headline_en, headline_es = _translated(HEADLINE)

    above = _Column(top=MARGIN, x=MARGIN, width=inner, anchor_middle=True)
    clinic = above.line(clinic_name, 8.5, bold=True)
    above.space(1.5)
    place = above.line(location.name, 5.5, bold=True)
    above.space(0.5)
    address = above.line(location.address, 4.4)
    above.space(3)
    rule_y = round(above.top, 2)
    above.space(5)
    headline_first = above.line(headline_en[1], 9.5, headline_en[0], bold=True)
    above.space(1)
    headline_second = above.line(headline_es[1], 8.0, headline_es[0], bold=True)
    above.space(1)

    # Lay the part under the code out once to measure it, then again where it belongs.
    below_height = _below(0.0, width, location, short_url)[-1]
    box = min(height - MARGIN - below_height - above.top, inner)
    typed, steps, help_lines, _ = _below(above.top + box, width, location, short_url)

    matrix = qr_code(url, box=box).matrix
    modules = len(matrix)
    module = box / (modules + 2 * QR_QUIET_MODULES)
    box_x = (width - box) / 2
    qr = PosterQR(
        box_x=round(box_x, 2),
        box_y=round(above.top, 2),
        box_size=round(box, 2),
        x=round(box_x + QR_QUIET_MODULES * module, 3),
        y=round(above.top + QR_QUIET_MODULES * module, 3),
        module=round(module, 4),
        size=round(module * modules, 2),
        path=qr_path(matrix),
    )
    return Poster(
        width=width,
        height=height,
        title=f"{clinic_name}, {location.name}: {headline_en[1]} / {headline_es[1]}",
        clinic=clinic,
        location=place,
        address=address,
        rule_y=rule_y,
        rule_x1=MARGIN,
        rule_x2=round(width - MARGIN, 2),
        headline=(headline_first, headline_second),
        qr=qr,
        url=typed,
        steps=steps,
        help=help_lines,
    )


def _below(
    top: float, width: float, location: PosterLocation, short_url: str
) -> tuple[PosterText, tuple[PosterStep, ...], tuple[PosterText, ...], float]:
    """The address to type, the three steps and where to get help; and their height."""
    inner = width - 2 * MARGIN
    centered = _Column(top=top, x=MARGIN, width=inner, anchor_middle=True)
    url = centered.line(short_url, 9.5, bold=True)
    centered.space(5)

    badge = 4.6  # the step number's circle, its radius
    column = _Column(
        top=centered.top, x=MARGIN + 2 * badge + 4, width=inner - 2 * badge - 4, anchor_middle=False
    )
    steps: list[PosterStep] = []
    for number, msgid in enumerate(STEPS, start=1):
        first = column.top
        (en_lang, en_text), (es_lang, es_text) = _translated(msgid)
        english = column.line(en_text, 5.2, en_lang)
        column.space(0.8)
        spanish = column.line(es_text, 4.8, es_lang)
        middle = (first + column.top) / 2
        steps.append(
            PosterStep(number, MARGIN + badge, round(middle, 2), badge, (english, spanish))
        )
        column.space(3.2)

    help_column = _Column(top=column.top, x=MARGIN, width=inner, anchor_middle=True)
    help_lines: list[PosterText] = []
    if location.phone:  # no number, no promise of one
        for lang, text in _translated(HELP, phone=phone_display(location.phone)):
            help_lines.append(help_column.line(text, 4.6, lang, bold=True))
            help_column.space(0.8)
    return url, tuple(steps), tuple(help_lines), help_column.top - top
