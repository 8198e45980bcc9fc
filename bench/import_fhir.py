"""Import benchmark: `portal import-fhir` over N generated patients, time and peak memory.

    .venv/bin/python -m bench.import_fhir                    # 200 patients, NDJSON
    .venv/bin/python -m bench.import_fhir --patients 10000   # the issue's figure
    .venv/bin/python -m bench.import_fhir --format bundles   # one transaction bundle per patient

Writes a bulk-data export (one NDJSON file per resource type, streamed to disk) or one bundle
per patient into a temporary folder, imports it into a fresh SQLite database (or
PORTAL_BENCH_IMPORT_URL, a PostgreSQL database that is emptied first), then imports it
again (every resource should come back unchanged). Each patient has 15 resources: a visit,
two problems, two medications, an allergy, three immunizations, a lab report with three
tests, a vital sign (skipped: not shown) and the Patient itself. Peak memory is the
process's maximum resident set size: it includes Python and the libraries (~70 MB) and, on
SQLite, the pages of the database file read through its memory map (PRAGMA mmap_size, up to
128 MB), so it grows with the database, not with what the import holds. `--tracemalloc`
also reports the peak of what Python itself allocated during each import (slower), which
is what stays bounded as N grows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

PER_PATIENT = 15


def _patient_resources(number: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    pid = f"bench-{number}"
    ref = {"reference": f"Patient/{pid}"}
    year = rng.randint(1940, 2015)
    yield {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "value": f"BENCH-{number:07d}",
            }
        ],
        "name": [
            {"family": rng.choice(["García", "Nguyễn", "Smith", "O'Brien"]), "given": ["Ana"]}
        ],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
    }
    day = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00+00:00"
    yield {
        "resourceType": "Encounter",
        "id": f"{pid}-e1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": "Office visit"}],
        "subject": ref,
        "period": {"start": day},
    }
    for index, (code, name) in enumerate((("44054006", "Diabetes"), ("59621000", "Hypertension"))):
        yield {
            "resourceType": "Condition",
            "id": f"{pid}-c{index}",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": code, "display": name}]
            },
            "subject": ref,
            "onsetDateTime": "2019-01-01",
        }
    for index, name in enumerate(("Metformin 500 mg", "Lisinopril 10 mg")):
        yield {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-m{index}",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": name},
            "subject": ref,
            "authoredOn": "2023-05-05",
            "dosageInstruction": [{"text": "1 tablet by mouth once a day"}],
        }
    yield {
        "resourceType": "AllergyIntolerance",
        "id": f"{pid}-a0",
        "code": {"text": "Penicillin"},
        "patient": ref,
        "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}],
    }
    for index, vaccine in enumerate(("Influenza", "Tdap", "COVID-19")):
        yield {
            "resourceType": "Immunization",
            "id": f"{pid}-i{index}",
            "status": "completed",
            "vaccineCode": {"text": vaccine},
            "patient": ref,
            "occurrenceDateTime": f"202{index}-10-01",
        }
    tests = (
        ("2345-7", "Glucose", "mg/dL"),
        ("2160-0", "Creatinine", "mg/dL"),
        ("2951-2", "Sodium", "mmol/L"),
    )
    yield {
        "resourceType": "DiagnosticReport",
        "id": f"{pid}-r0",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "51990-0"}],
            "text": "Basic metabolic panel",
        },
        "subject": ref,
        "effectiveDateTime": day,
        "issued": day,
        "result": [{"reference": f"Observation/{pid}-o{index}"} for index in range(len(tests))],
    }
    lab = [{"coding": [{"code": "laboratory"}]}]
    for index, (loinc, name, unit) in enumerate(tests):
        yield {
            "resourceType": "Observation",
            "id": f"{pid}-o{index}",
            "status": "final",
            "category": lab,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}], "text": name},
            "subject": ref,
            "effectiveDateTime": day,
            "valueQuantity": {"value": round(rng.uniform(1, 140), 1), "unit": unit},
        }
    yield {
        "resourceType": "Observation",
        "id": f"{pid}-v0",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}], "text": "Height"},
        "subject": ref,
        "effectiveDateTime": day,
        "valueQuantity": {"value": 170, "unit": "cm"},
    }


def generate(folder: Path, patients: int, form: str) -> list[Path]:
    """Write the export to disk one patient at a time (nothing held in memory)."""
    rng = random.Random(14)
    if form == "bundles":
        paths = []
        for number in range(patients):
            path = folder / f"patient-{number:07d}.json"
            entries = [{"resource": r} for r in _patient_resources(number, rng)]
            path.write_text(
                json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
            )
            paths.append(path)
        return paths
    files: dict[str, TextIO] = {}
    try:
        for number in range(patients):
            for item in _patient_resources(number, rng):
                kind = item["resourceType"]
                if kind not in files:
                    files[kind] = (folder / f"{kind}.ndjson").open("w", encoding="utf-8")
                files[kind].write(json.dumps(item) + "\n")
    finally:
        for handle in files.values():
            handle.close()
    return sorted(folder.glob("*.ndjson"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(paths: list[Path], trace: bool) -> None:
    from app.cli import _migrate
    from app.services.record.fhir_import import fhir_import

    await _migrate()
    for label in ("first import", "second import"):
        before = _peak_mb()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        report = await fhir_import(paths, source="bench", keep_lines=False)
        seconds = time.perf_counter() - started
        traced = ""
        if trace:
            traced = f"; Python allocations peak {tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB"
            tracemalloc.stop()
        outcomes = ", ".join(
            f"{report.total(name)} {name}"
            for name in ("created", "updated", "unchanged", "skipped")
        )
        resources = sum(report.counts.values())
        print(
            f"{label}: {seconds:.1f} s, {resources / seconds:,.0f} resources/s; {outcomes}; "
            f"patients {dict(report.patients)}; "
            f"peak RSS {_peak_mb():.0f} MB (before {before:.0f} MB){traced}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--format", choices=("ndjson", "bundles"), default="ndjson")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python's allocations (slower)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portal-bench-import-"))
    os.environ["PORTAL_DATA_DIR"] = str(work / "data")
    os.environ["PORTAL_LOG_LEVEL"] = "WARNING"
    url = os.environ.get("PORTAL_BENCH_IMPORT_URL")
    os.environ["PORTAL_DATABASE_URL"] = url or f"sqlite:///{work}/bench.db"
    if url:
        import asyncpg

        async def empty() -> None:
            connection = await asyncpg.connect(url)
            try:
                await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            finally:
                await connection.close()

        asyncio.run(empty())
    files = work / "export"
    files.mkdir()
    started = time.perf_counter()
    paths = generate(files, args.patients, args.format)
    size = sum(path.stat().st_size for path in paths) / 1e6
    print(
        f"{args.patients} patients, {args.patients * PER_PATIENT} resources, {args.format} "
        f"({size:.1f} MB) written in {time.perf_counter() - started:.1f} s; "
        f"database {'PostgreSQL' if url else 'SQLite'}"
    )
    asyncio.run(_run(paths, args.tracemalloc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
