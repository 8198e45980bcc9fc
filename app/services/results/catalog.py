"""Plain-language explanations and typical reference ranges for lab tests, by LOINC code.

The content lives in app/content/labs/, one JSON file per LOINC code (e.g. `2345-7.json`), so
each entry is reviewed on its own. Every file carries English and Spanish text:

    {"loinc": "2345-7", "name": {"en": "...", "es": "..."},
     "ranges": [{"sex": "any", "min_age": 18, "max_age": 200, "low": 70, "high": 99,
                 "unit": "mg/dL"}],
     "en": {"what": "...", "low": "...", "high": "...", "not_worrying": "...",
            "contact": "...", "questions": ["..."]},
     "es": {...the same keys...},
     "sources": ["https://..."]}

A range's `low` or `high` may be null where only one side has a limit (HDL has no upper limit,
triglycerides no lower one). Tests read as present or absent (a chlamydia test, a pregnancy test)
and panels have no ranges. Ages are whole years, both ends included. The ranges are typical
values from public references; a laboratory's own range, sent with a result, comes first.

The files are read and checked once, on first use; a broken file raises CatalogError naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LABS_DIR = Path(__file__).resolve().parents[2] / "content" / "labs"
LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_LANGUAGE = "en"
TEXT_FIELDS: tuple[str, ...] = ("what", "low", "high", "not_worrying", "contact")
SEXES = frozenset({"any", "female", "male"})
MAX_AGE = 200

_LOINC = re.compile(r"^\d{1,7}-\d$")


class CatalogError(ValueError):
    """A content file is missing something or holds a value that makes no sense."""


@dataclass(frozen=True)
class LabExplanation:
    loinc: str
    name: str
    what: str
    low: str
    high: str
    not_worrying: str
    contact: str
    questions: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ReferenceRange:
    low: float | None
    high: float | None
    unit: str


@dataclass(frozen=True)
class RangeRule:
    sex: str
    min_age: int
    max_age: int
    low: float | None
    high: float | None
    unit: str

    def matches(self, *, sex: str, age: int) -> bool:
        return self.sex in ("any", sex) and self.min_age <= age <= self.max_age


@dataclass(frozen=True)
class CatalogEntry:
    loinc: str
    ranges: tuple[RangeRule, ...]
    explanations: Mapping[str, LabExplanation]


def lab_explanation(loinc: str, locale: str) -> LabExplanation | None:
    """The explanation in the locale's language ('es', 'es-MX'), else English; None if unknown."""
    entry = _catalog().get(loinc)
    if entry is None:
        return None
    language = locale.replace("_", "-").split("-")[0].lower()
    return entry.explanations.get(language) or entry.explanations[DEFAULT_LANGUAGE]


def lab_name(loinc: str, locale: str, lab_given: str) -> str:
    """A test's name as the reader reads it: the lab's own name in English, our catalog's
    translation in another language when we have one."""
    if locale.replace("_", "-").split("-")[0].lower() == DEFAULT_LANGUAGE:
        return lab_given
    explanation = lab_explanation(loinc, locale)
    return explanation.name if explanation else lab_given


def lab_reference_range(loinc: str, *, sex: str, age: int) -> ReferenceRange | None:
    """The typical range for this person: a sex-specific range over one for "any" sex, then the
    narrowest age band. None for an unknown test or when no range fits (e.g. a child, where only
    adult ranges are known)."""
    entry = _catalog().get(loinc)
    if entry is None:
        return None
    fitting = [rule for rule in entry.ranges if rule.matches(sex=sex, age=age)]
    if not fitting:
        return None
    best = min(fitting, key=lambda rule: (rule.sex == "any", rule.max_age - rule.min_age))
    return ReferenceRange(low=best.low, high=best.high, unit=best.unit)


def catalog_codes() -> frozenset[str]:
    return frozenset(_catalog())


@cache
def _catalog() -> dict[str, CatalogEntry]:
    return load_catalog(LABS_DIR)


def load_catalog(directory: Path) -> dict[str, CatalogEntry]:
    """Read and check every `*.json` file in the folder."""
    entries: dict[str, CatalogEntry] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entry = _parse_entry(raw, expected_loinc=path.stem)
        except (CatalogError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CatalogError(f"{path.name}: {error}") from error
        entries[entry.loinc] = entry
    if not entries:
        raise CatalogError(f"no lab content files in {directory}")
    return entries


def _parse_entry(raw: Any, *, expected_loinc: str) -> CatalogEntry:
    data = _mapping(raw, "the file")
    _require_keys(data, ("loinc", "name", "ranges", "sources", *LANGUAGES), "the file")
    loinc = _text(data["loinc"], "loinc")
    if not _LOINC.match(loinc):
        raise CatalogError(f"loinc {loinc!r} is not a LOINC code")
    if loinc != expected_loinc:
        raise CatalogError(f"loinc {loinc!r} does not match the file name {expected_loinc!r}")
    names = _mapping(data["name"], "name")
    _require_keys(names, LANGUAGES, "name")
    sources = tuple(_text(item, "sources[]") for item in _list(data["sources"], "sources"))
    if not any(source.startswith("https://") for source in sources):
        raise CatalogError("sources needs at least one https:// address")
    ranges = tuple(
        _parse_range(item, f"ranges[{index}]")
        for index, item in enumerate(_list(data["ranges"], "ranges", allow_empty=True))
    )
    explanations = {
        language: _parse_text(
            data[language],
            language,
            loinc=loinc,
            name=_text(names[language], f"name.{language}"),
            sources=sources,
        )
        for language in LANGUAGES
    }
    return CatalogEntry(loinc=loinc, ranges=ranges, explanations=explanations)


def _parse_text(
    raw: Any, language: str, *, loinc: str, name: str, sources: tuple[str, ...]
) -> LabExplanation:
    block = _mapping(raw, language)
    _require_keys(block, (*TEXT_FIELDS, "questions"), language)
    fields = {field: _text(block[field], f"{language}.{field}") for field in TEXT_FIELDS}
    questions = tuple(
        _text(item, f"{language}.questions[]")
        for item in _list(block["questions"], f"{language}.questions")
    )
    return LabExplanation(
        loinc=loinc,
        name=name,
        what=fields["what"],
        low=fields["low"],
        high=fields["high"],
        not_worrying=fields["not_worrying"],
        contact=fields["contact"],
        questions=questions,
        sources=sources,
    )


def _parse_range(raw: Any, where: str) -> RangeRule:
    data = _mapping(raw, where)
    _require_keys(data, ("sex", "min_age", "max_age", "low", "high", "unit"), where)
    sex = data["sex"]
    if sex not in SEXES:
        raise CatalogError(f"{where}.sex must be one of {sorted(SEXES)}, not {sex!r}")
    min_age, max_age = data["min_age"], data["max_age"]
    if not (_is_int(min_age) and _is_int(max_age) and 0 <= min_age <= max_age <= MAX_AGE):
        raise CatalogError(
            f"{where} ages must be whole years with 0 <= min_age <= max_age <= {MAX_AGE}, "
            f"not {min_age!r}..{max_age!r}"
        )
    low, high = _bound(data["low"], f"{where}.low"), _bound(data["high"], f"{where}.high")
    if low is None and high is None:
        raise CatalogError(f"{where} needs a low or a high limit")
    if low is not None and high is not None and low > high:
        raise CatalogError(f"{where} has low {low} above high {high}")
    unit = data["unit"]
    if not isinstance(unit, str):
        raise CatalogError(f"{where}.unit must be text")
    return RangeRule(sex=sex, min_age=min_age, max_age=max_age, low=low, high=high, unit=unit)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where} must be an object")
    return value


def _list(value: Any, where: str, *, allow_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise CatalogError(f"{where} must be a list")
    if not value and not allow_empty:
        raise CatalogError(f"{where} must not be empty")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where} must be non-empty text")
    return value.strip()


def _require_keys(data: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise CatalogError(f"{where} is missing {', '.join(missing)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(f"{where} must be a number or null")
    if value < 0:
        raise CatalogError(f"{where} must not be negative")
    return float(value)
