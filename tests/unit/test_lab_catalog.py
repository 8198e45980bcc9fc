"""The plain-language lab catalog: complete for the demo's tests, readable, sourced, sane."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import textstat

from app.services.demo import clinic as demo_clinic
from app.services.results import panels as lab_panels
from app.services.results.catalog import (
    LABS_DIR,
    LANGUAGES,
    TEXT_FIELDS,
    CatalogError,
    ReferenceRange,
    catalog_codes,
    lab_explanation,
    lab_reference_range,
    load_catalog,
)
from app.services.results.panels import Analyte, Panel

MAX_GRADE = 8.0
_LOINC = re.compile(r"^\d{1,7}-\d$")


def _demo_panels() -> list[Panel]:
    """Every panel the demo data can order: the ones lab_panels.py defines and demo_clinic uses."""
    found: dict[str, Panel] = {}
    for module in (lab_panels, demo_clinic):
        for value in vars(module).values():
            if isinstance(value, Panel):
                found[value.loinc] = value
    return list(found.values())


def _demo_analytes() -> list[Analyte]:
    return [analyte for panel in _demo_panels() for analyte in panel.analytes]


def _demo_loincs() -> set[str]:
    codes = {panel.loinc for panel in _demo_panels()}
    codes |= {analyte.loinc for analyte in _demo_analytes()}
    # Codes written straight into the seed (baselines and the like), read from its source.
    source = Path(demo_clinic.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _LOINC.match(node.value)
        ):
            codes.add(node.value)
    return codes


def _raw_entries() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(LABS_DIR.glob("*.json"))
    }


def test_the_demo_uses_the_panels_this_test_reads() -> None:
    codes = _demo_loincs()
    # Blood count, chemistry, lipids, A1c, TSH and the adolescent's confidential chlamydia test.
    assert {"58410-2", "718-7", "2345-7", "2093-3", "4548-4", "3016-3", "21613-5"} <= codes


def test_every_demo_test_is_explained_in_english_and_spanish() -> None:
    raw = _raw_entries()
    missing = sorted(_demo_loincs() - catalog_codes())
    assert not missing, f"no catalog entry for demo LOINC codes {missing}"
    for code in sorted(_demo_loincs()):
        entry = raw[code]
        for language in LANGUAGES:
            assert entry["name"][language].strip(), (code, language, "name")
            for field in TEXT_FIELDS:
                assert entry[language][field].strip(), (code, language, field)
            assert entry[language]["questions"], (code, language, "questions")
            assert all(q.strip() for q in entry[language]["questions"]), (code, language)
        english, spanish = lab_explanation(code, "en"), lab_explanation(code, "es")
        assert english is not None
        assert spanish is not None
        assert spanish.what != english.what, f"{code}: the Spanish text is the English one"
        assert len(spanish.questions) == len(english.questions), code


def test_the_catalog_covers_at_least_sixty_tests() -> None:
    assert len(catalog_codes()) >= 60
    assert len(list(LABS_DIR.glob("*.json"))) == len(catalog_codes())


def test_every_english_text_reads_at_grade_eight_or_below() -> None:
    too_hard: list[str] = []
    for code in sorted(catalog_codes()):
        explanation = lab_explanation(code, "en")
        assert explanation is not None
        texts = [(field, getattr(explanation, field)) for field in TEXT_FIELDS]
        texts += [(f"questions[{i}]", q) for i, q in enumerate(explanation.questions)]
        for field, text in texts:
            grade = textstat.flesch_kincaid_grade(text)
            if grade > MAX_GRADE:
                too_hard.append(f"{code} ({explanation.name}) {field}: grade {grade:.1f}")
    assert not too_hard, "above Flesch-Kincaid grade 8:\n" + "\n".join(too_hard)


def test_every_entry_names_an_https_source() -> None:
    for code in sorted(catalog_codes()):
        explanation = lab_explanation(code, "en")
        assert explanation is not None
        assert any(source.startswith("https://") for source in explanation.sources), code


def test_spanish_is_served_for_spanish_and_english_is_the_fallback() -> None:
    spanish = lab_explanation("2345-7", "es")
    english = lab_explanation("2345-7", "en")
    assert spanish is not None
    assert english is not None
    assert spanish.name == "Glucosa (azúcar en la sangre)"
    assert english.name == "Glucose (blood sugar)"
    assert lab_explanation("2345-7", "es-MX") == spanish
    assert lab_explanation("2345-7", "fr") == english
    assert lab_explanation("2345-7", "") == english


def test_an_unknown_test_has_no_explanation_and_no_range() -> None:
    assert lab_explanation("99999-9", "en") is None
    assert lab_reference_range("99999-9", sex="female", age=40) is None


def test_a_sex_specific_range_wins_over_one_for_any_sex() -> None:
    hemoglobin_female = lab_reference_range("718-7", sex="female", age=40)
    hemoglobin_male = lab_reference_range("718-7", sex="male", age=40)
    assert hemoglobin_female is not None
    assert hemoglobin_male is not None
    assert (hemoglobin_female.low, hemoglobin_female.high) == (12.0, 15.5)
    assert (hemoglobin_male.low, hemoglobin_male.high) == (13.5, 17.5)
    # HDL: one range for children of any sex, sex-specific ones for adults.
    assert lab_reference_range("2085-9", sex="female", age=45) == _range(50.0, None, "mg/dL")
    assert lab_reference_range("2085-9", sex="male", age=45) == _range(40.0, None, "mg/dL")
    assert lab_reference_range("2085-9", sex="male", age=15) == _range(45.0, None, "mg/dL")
    # Ages pick the band: triglycerides differ for young children, older children and adults.
    assert lab_reference_range("2571-8", sex="female", age=6) == _range(None, 75.0, "mg/dL")
    assert lab_reference_range("2571-8", sex="female", age=12) == _range(None, 90.0, "mg/dL")
    assert lab_reference_range("2571-8", sex="female", age=30) == _range(None, 150.0, "mg/dL")


def test_a_range_only_for_one_sex_or_for_adults_is_not_stretched_to_others() -> None:
    assert lab_reference_range("2857-1", sex="female", age=60) is None  # PSA
    assert lab_reference_range("2857-1", sex="male", age=60) == _range(None, 4.0, "ng/mL")
    assert lab_reference_range("718-7", sex="female", age=8) is None  # adult ranges only
    assert lab_reference_range("21613-5", sex="male", age=16) is None  # detected or not


def test_the_demo_values_are_read_against_ranges_that_agree_with_the_catalog() -> None:
    for analyte in _demo_analytes():
        if not analyte.unit:  # a present-or-absent test such as chlamydia has no range
            assert lab_reference_range(analyte.loinc, sex="female", age=16) is None
            continue
        for sex in ("female", "male"):
            catalog = lab_reference_range(analyte.loinc, sex=sex, age=45)
            assert catalog is not None, (analyte.loinc, sex)
            assert catalog.unit == analyte.unit, (analyte.loinc, catalog.unit, analyte.unit)
            low, high = analyte.range_for(sex)
            overlaps = (catalog.low is None or catalog.low <= high) and (
                catalog.high is None or catalog.high >= low
            )
            assert overlaps, (analyte.loinc, sex, (low, high), catalog)
            # The demo's limits sit within a factor of two of the typical ones.
            for demo_limit, typical in ((low, catalog.low), (high, catalog.high)):
                if typical and demo_limit:
                    assert 0.5 <= demo_limit / typical <= 2.0, (analyte.loinc, sex)


def test_every_file_is_named_after_its_code_and_every_range_is_sane() -> None:
    for stem, entry in _raw_entries().items():
        assert entry["loinc"] == stem
        assert set(entry) >= {"loinc", "name", "ranges", "sources", *LANGUAGES}
        for rule in entry["ranges"]:
            assert rule["sex"] in {"any", "female", "male"}, stem
            assert 0 <= rule["min_age"] <= rule["max_age"] <= 200, stem
            if rule["low"] is not None and rule["high"] is not None:
                assert rule["low"] <= rule["high"], stem


def _write(folder: Path, name: str, entry: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(entry), encoding="utf-8")


def _valid_entry() -> dict[str, Any]:
    return json.loads((LABS_DIR / "2345-7.json").read_text(encoding="utf-8"))


def test_a_valid_folder_loads(tmp_path: Path) -> None:
    _write(tmp_path, "2345-7.json", _valid_entry())
    assert set(load_catalog(tmp_path)) == {"2345-7"}


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda e: e.pop("es"), "missing es"),
        (lambda e: e["en"].pop("contact"), "en is missing contact"),
        (lambda e: e["es"].update(what=" "), "es.what must be non-empty text"),
        (lambda e: e.update(sources=["http://example.org"]), "https://"),
        (lambda e: e["ranges"][0].update(low=120, high=99), "low 120.0 above high 99.0"),
        (lambda e: e["ranges"][0].update(min_age=30, max_age=20), "ages"),
        (lambda e: e["ranges"][0].update(sex="woman"), "sex must be one of"),
        (lambda e: e["ranges"][0].update(low=None, high=None), "needs a low or a high"),
        (lambda e: e.update(loinc="2345-8"), "does not match the file name"),
    ],
)
def test_a_broken_file_is_refused_with_its_name(
    tmp_path: Path, breakage: Any, message: str
) -> None:
    entry = _valid_entry()
    breakage(entry)
    _write(tmp_path, "2345-7.json", entry)
    with pytest.raises(CatalogError, match=re.escape(message)) as raised:
        load_catalog(tmp_path)
    assert str(raised.value).startswith("2345-7.json: ")


def test_a_file_that_is_not_json_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "718-7.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"^718-7\.json: "):
        load_catalog(tmp_path)


def _range(low: float | None, high: float | None, unit: str) -> ReferenceRange:
    return ReferenceRange(low=low, high=high, unit=unit)
