"""FHIR in and out: `portal import-fhir` over Synthea's bundles and over malformed ones, and
"Download my record" as a bundle that validates and reads back with nothing lost."""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from app.services.record.documents import simple_pdf
from app.services.record.fhir_export import patient_bundle, record_export
from app.services.record.fhir_import import ImportReport, fhir_import
from app.tables import (
    Allergy,
    AuditEvent,
    EnrollmentInvite,
    FhirSource,
    Immunization,
    LabObservation,
    LabReport,
    Medication,
    OutboxMessage,
    Patient,
    Problem,
    RecordDocument,
    VisitSummary,
)
from tests.factories import (
    grant,
    make_person,
    make_record,
    make_report,
    synthea_files,
    unique,
    years_ago,
)

SYNTHEA_FILES = synthea_files()
needs_synthea = pytest.mark.skipif(
    not SYNTHEA_FILES,
    reason="the Synthea R4 sample (shared/data/fhir-synthea-r4, beside the repository) is absent",
)
RECORD_TABLES = (
    Medication,
    Allergy,
    Immunization,
    Problem,
    RecordDocument,
    VisitSummary,
    LabObservation,
    LabReport,
)


def _write(tmp_path: Path, bundle: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


async def _set_aside(patient_id: int) -> None:
    """Move a patient out of the way (a new MRN), so their export imports as into an empty
    portal: a new record, every resource new."""
    await Patient.update({Patient.mrn: unique("aside")}).where(Patient.id == patient_id)


def _comparable(bundle: dict[str, Any]) -> list[str]:
    """A bundle's content without the ids the portal gives (which a new portal changes)."""
    ids = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        ids[f"{resource['resourceType']}/{resource['id']}"] = resource["resourceType"]
    text = []
    for entry in bundle["entry"]:
        resource = copy.deepcopy(entry["resource"])
        resource.pop("id")
        raw = json.dumps(resource, sort_keys=True)
        for ref, kind in ids.items():
            raw = raw.replace(f'"{ref}"', f'"{kind}/*"')
        text.append(raw)
    return sorted(text)


def _patient(mrn: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "id": f"p-{mrn}",
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": "urn:test",
                "value": mrn,
            }
        ],
        "name": [{"family": "Núñez", "given": ["Zoë"]}],
        "gender": "female",
        "birthDate": "1990-04-02",
    }
    resource.update(extra)
    return resource


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "request": {"method": "POST"}}
            for r in resources
        ],
    }


def _lab(mrn: str, oid: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "effectiveDateTime": "2024-01-05T10:00:00+00:00",
        "valueQuantity": {"value": 104, "unit": "mg/dL"},
    }
    resource.update(extra)
    return resource


def _lines(report: ImportReport) -> dict[str, tuple[str, str]]:
    return {line.resource_id: (line.outcome, line.reason) for line in report.lines}


# Synthea -------------------------------------------------------------------------------------


@needs_synthea
async def test_synthea_imports_13_patients_counted_per_type_then_a_second_run_is_unchanged() -> (
    None
):
    expected: Counter[str] = Counter()
    for path in SYNTHEA_FILES:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        expected.update(entry["resource"]["resourceType"] for entry in bundle["entry"])
    source = unique("synthea")
    first = await fhir_import(SYNTHEA_FILES, source=source)
    # Created, or matched by MRN when another test imported them under another source.
    assert first.patients["created"] + first.patients["updated"] == len(SYNTHEA_FILES) == 13
    assert first.by_type() == dict(expected)
    kept = {"Condition", "Immunization", "MedicationRequest", "AllergyIntolerance", "Encounter"}
    for kind in kept:
        assert first.total("skipped", kind) == 0, kind
        assert first.total("created", kind) + first.total("unchanged", kind) == expected[kind]
    second = await fhir_import(SYNTHEA_FILES, source=source)
    assert second.total("created") == second.total("updated") == 0
    kept_first = sum(first.total(name) for name in ("created", "updated", "unchanged"))
    assert second.total("unchanged") == kept_first
    assert second.total("skipped") == first.total("skipped")  # the same lines, same reasons
    assert second.patients["unchanged"] == 13


@needs_synthea
async def test_each_synthea_patient_exports_a_valid_bundle_that_round_trips(tmp_path: Path) -> None:
    source = unique("synthea")
    await fhir_import(SYNTHEA_FILES, source=source)
    rows = await FhirSource.select(FhirSource.local_id).where(
        FhirSource.source_key.like(f"{source}|Patient/%")
    )
    assert len(rows) == 13
    for row in rows:
        exported = await patient_bundle(row["local_id"], sees_confidential=True)
        Bundle.model_validate(exported)
        await _set_aside(row["local_id"])
        path = _write(tmp_path, exported, f"{row['local_id']}.json")
        report = await fhir_import([path], source=unique("again"))
        assert report.total("skipped") == 0, [str(line) for line in report.lines]
        again = await Patient.select(Patient.id).where(
            Patient.mrn == exported["entry"][0]["resource"]["identifier"][0]["value"]
        )
        assert _comparable(await patient_bundle(again[0]["id"], sees_confidential=True)) == (
            _comparable(exported)
        )


# Export --------------------------------------------------------------------------------------


async def test_the_download_validates_and_reimports_into_an_empty_portal_with_nothing_lost(
    tmp_path: Path,
) -> None:
    person = await make_person("Rosa", birth=years_ago(40))
    await make_record(person.patient)
    await make_record(person.patient, confidential=True, label=" (private)")
    await make_report(person.patient, name="Basic metabolic panel")
    data = await record_export(await person.context())
    exported = json.loads(data)
    Bundle.model_validate(exported)
    kinds = Counter(entry["resource"]["resourceType"] for entry in exported["entry"])
    assert kinds["MedicationRequest"] == kinds["Condition"] == kinds["DocumentReference"] == 2
    document = next(
        e["resource"]
        for e in exported["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    )
    assert base64.b64decode(document["content"][0]["attachment"]["data"]).startswith(b"%PDF-")
    assert await AuditEvent.exists().where(
        AuditEvent.action == "record.export", AuditEvent.patient == person.patient.id
    )
    # An empty portal: the record, its grants and audit rows aside, gone.
    mrn = person.patient.mrn
    await _set_aside(person.patient.id)
    report = await fhir_import([_write(tmp_path, exported)], source=unique("download"))
    assert report.total("skipped") == 0, [str(line) for line in report.lines]
    new = await Patient.select(Patient.id).where(Patient.mrn == mrn).first()
    again = await patient_bundle(new["id"], sees_confidential=True)
    assert _comparable(again) == _comparable(exported)


async def test_a_guardian_s_download_of_a_teen_s_record_has_no_confidential_item() -> None:
    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_person("Maria")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await make_record(teen.patient, label=" (general)")
    await make_record(teen.patient, confidential=True, label=" (private)")
    guardian = (await record_export(await parent.context(teen.patient.id))).decode()
    own = (await record_export(await teen.context())).decode()
    assert "(private)" not in guardian
    assert "(general)" in guardian
    assert "(private)" in own


# Malformed input -----------------------------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()
CASES: list[tuple[str, list[dict[str, Any]], str, str, str]] = [
    # (case, resources after the patient, resource id, outcome, words in the reason)
    (
        "unknown lab code",
        [_lab("{mrn}", "o1", code={"text": "Mystery marker", "coding": [{"code": "00000-0"}]})],
        "o1",
        "created",
        "not in our lab catalog",
    ),
    (
        "missing unit",
        [_lab("{mrn}", "o2", valueQuantity={"value": 5})],
        "o2",
        "created",
        "no unit",
    ),
    ("no reference range: the catalog's", [_lab("{mrn}", "o3")], "o3", "created", "our catalog"),
    (
        "future date",
        [_lab("{mrn}", "o4", effectiveDateTime=FUTURE)],
        "o4",
        "skipped",
        "in the future",
    ),
    (
        "duplicate id",
        [_lab("{mrn}", "o5"), _lab("{mrn}", "o5", valueQuantity={"value": 200, "unit": "mg/dL"})],
        "o5",
        "skipped",
        "duplicate id",
    ),
    (
        "broken reference",
        [_lab("nobody", "o6")],
        "o6",
        "skipped",
        "refers to a patient",
    ),
    (
        "invalid resource",
        [
            {
                "resourceType": "Immunization",
                "id": "i1",
                "status": 7,
                "patient": {"reference": "urn:uuid:p-{mrn}"},
            }
        ],
        "i1",
        "skipped",
        "not valid FHIR R4",
    ),
    (
        "vital signs",
        [
            _lab(
                "{mrn}",
                "o7",
                category=[{"coding": [{"code": "vital-signs"}]}],
            )
        ],
        "o7",
        "skipped",
        "not shown in the portal",
    ),
    (
        "a type the portal does not keep",
        [{"resourceType": "Claim", "id": "c1"}],
        "c1",
        "skipped",
        "not kept",
    ),
]


def _fill(resource: dict[str, Any], mrn: str) -> dict[str, Any]:
    return json.loads(json.dumps(resource).replace("{mrn}", mrn))


@pytest.mark.parametrize(
    ("case", "resources", "resource_id", "outcome", "reason"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_malformed_resource_gets_a_clear_line_and_the_patient_stays_whole(
    tmp_path: Path,
    case: str,
    resources: list[dict[str, Any]],
    resource_id: str,
    outcome: str,
    reason: str,
) -> None:
    mrn = unique("M")
    bundle = _bundle(_patient(mrn), *[_fill(r, mrn) for r in resources])
    report = await fhir_import([_write(tmp_path, bundle)], source=unique("s"))
    lines = [line for line in report.lines if line.resource_id == resource_id]
    assert any(line.outcome == outcome and reason in line.reason for line in lines), [
        str(line) for line in report.lines
    ]
    patient = await Patient.select(Patient.given_name, Patient.family_name).where(
        Patient.mrn == mrn
    )
    assert patient == [{"given_name": "Zoë", "family_name": "Núñez"}]


PATIENT_CASES = [
    ("no MRN", {"identifier": []}, "skipped", "no MRN"),
    ("birth date in the future", {"birthDate": FUTURE[:10]}, "skipped", "in the future"),
    ("no name", {"name": []}, "skipped", "no name"),
    ("not valid", {"birthDate": "the fourth of May"}, "skipped", "not valid FHIR R4"),
]


@pytest.mark.parametrize(
    ("case", "change", "outcome", "reason"), PATIENT_CASES, ids=[c[0] for c in PATIENT_CASES]
)
async def test_a_patient_that_cannot_be_matched_safely_is_skipped_with_all_of_theirs(
    tmp_path: Path, case: str, change: dict[str, Any], outcome: str, reason: str
) -> None:
    mrn = unique("M")
    bundle = _bundle(_patient(mrn, **change), _fill(_lab("{mrn}", "o1"), mrn))
    report = await fhir_import([_write(tmp_path, bundle)], source=unique("s"))
    found = _lines(report)
    assert found[f"p-{mrn}"][0] == outcome
    assert reason in found[f"p-{mrn}"][1]
    assert found["o1"] == ("skipped", "its patient was not imported")
    assert not await Patient.exists().where(Patient.mrn == mrn)


async def test_a_patient_is_matched_by_mrn_never_by_name(tmp_path: Path) -> None:
    person = await make_person("Zoë")
    same_name = _patient(unique("M"))
    same_name["name"] = [{"family": person.patient.family_name, "given": ["Zoë"]}]
    same_name["birthDate"] = person.patient.birth_date.isoformat()
    await fhir_import([_write(tmp_path, _bundle(same_name))], source=unique("s"))
    assert await Patient.count().where(Patient.family_name == person.patient.family_name) == 2
    # The same MRN with another birth date is refused rather than merged.
    clash = _patient(person.patient.mrn, birthDate="1950-01-01")
    report = await fhir_import([_write(tmp_path, _bundle(clash), "clash.json")], source="x")
    assert "another birth date" in report.lines[0].reason


async def test_a_deceased_patient_is_imported_without_invitations(tmp_path: Path) -> None:
    mrn = unique("M")
    bundle = _bundle(_patient(mrn, deceasedDateTime="2020-02-02T00:00:00+00:00"))
    report = await fhir_import([_write(tmp_path, bundle)], source=unique("s"))
    assert "deceased" in report.lines[0].reason
    row = await Patient.select(Patient.id, Patient.deceased_at).where(Patient.mrn == mrn).first()
    assert row["deceased_at"] is not None
    assert not await EnrollmentInvite.exists().where(EnrollmentInvite.patient == row["id"])


async def test_an_update_replaces_and_a_document_travels_inline(tmp_path: Path) -> None:
    mrn, source = unique("M"), unique("s")
    pdf = simple_pdf("Visit", ["Hello"])
    document = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "title": "Visit note",
                    "data": base64.b64encode(pdf).decode(),
                }
            }
        ],
    }
    shot = {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "completed",
        "vaccineCode": {"text": "Tdap"},
        "patient": {"reference": f"urn:uuid:p-{mrn}"},
        "occurrenceDateTime": "2023-03-03",
    }
    first = await fhir_import(
        [_write(tmp_path, _bundle(_patient(mrn), shot, document))], source=source
    )
    assert _lines(first)["d1"][0] == "created"
    shot["lotNumber"] = "AB12"
    second = await fhir_import(
        [_write(tmp_path, _bundle(_patient(mrn), shot, document))], source=source
    )
    assert _lines(second)["i1"][0] == "updated"
    assert _lines(second)["d1"][0] == "unchanged"
    lots = await Immunization.select(Immunization.lot_number).where(Immunization.patient.mrn == mrn)
    assert lots == [{"lot_number": "AB12"}]


async def test_ndjson_streams_in_batches_and_finds_patients_from_earlier_lines(
    tmp_path: Path,
) -> None:
    mrns = [unique("N") for _ in range(5)]
    patients = tmp_path / "Patient.ndjson"
    patients.write_text("\n".join(json.dumps(_patient(m)) for m in mrns) + "\n", encoding="utf-8")
    observations = tmp_path / "Observation.ndjson"
    observations.write_text(
        "\n".join(
            json.dumps(_lab(m, f"o-{m}", subject={"reference": f"Patient/p-{m}"})) for m in mrns
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    reports = tmp_path / "DiagnosticReport.ndjson"
    reports.write_text(
        json.dumps(
            {
                "resourceType": "DiagnosticReport",
                "id": "panel",
                "status": "final",
                "code": {"text": "Glucose panel"},
                "subject": {"reference": f"Patient/p-{mrns[0]}"},
                "effectiveDateTime": "2024-01-05T10:00:00+00:00",
                "result": [{"reference": f"Observation/o-{mrns[0]}"}],
            }
        ),
        encoding="utf-8",
    )
    files = [observations, reports, patients]
    report = await fhir_import(files, source=unique("bulk"), batch_lines=2)
    assert report.patients["created"] == 5
    assert report.total("created", "Observation") == 5
    assert any("not JSON" in line.reason for line in report.lines)
    # The panel's test, sent in a file of its own, lands in the panel.
    panel = await LabReport.select(LabReport.id).where(
        LabReport.name == "Glucose panel", LabReport.patient.mrn == mrns[0]
    )
    tests = await LabObservation.count().where(LabObservation.report == panel[0]["id"])
    assert tests == 1


async def test_a_deceased_patient_s_record_opens_to_no_one_and_gets_no_invitation() -> None:
    from app.access import patient_context_resolve
    from app.services.enrollment import invite_create
    from app.services.self_access import SelfAccessError
    from tests.factories import actor_for

    person = await make_person("Ada")
    await Patient.update(
        {Patient.deceased_at: datetime.now(UTC), Patient.email: "ada@example.com"}
    ).where(Patient.id == person.patient.id)
    assert await patient_context_resolve(actor_for(person.account)) is None
    with pytest.raises(SelfAccessError) as refused:
        await invite_create(
            mrn=person.patient.mrn, via="email", base_url="http://x", clinic_name="Clinic"
        )
    assert refused.value.reason == "deceased"


# Review fixes: what a re-import may change, and what one bad file may not stop ----------------


async def test_a_reimported_new_phone_is_not_the_teen_s_own_until_staff_check_it(
    tmp_path: Path,
) -> None:
    from app.notices.results import send_result_ready
    from app.services.sign_in import _people_with_contact
    from tests.factories import make_account, phone_number

    mrn = unique("T")
    birth = years_ago(15).isoformat()
    teen_phone, parent_phone = phone_number(), phone_number()
    first = _patient(mrn, birthDate=birth, telecom=[{"system": "phone", "value": teen_phone}])
    await fhir_import([_write(tmp_path, _bundle(first), "t1.json")])
    await Patient.update({Patient.phone_is_own: True}).where(Patient.mrn == mrn)
    teen = await Patient.objects().where(Patient.mrn == mrn).first()
    account = await make_account("Teen")
    await grant(account, teen)
    # The same phone again keeps the staff's mark.
    again = _patient(
        mrn,
        birthDate=birth,
        telecom=[{"system": "phone", "value": teen_phone}],
        gender="female",
        active=True,
    )
    await fhir_import([_write(tmp_path, _bundle(again), "t1b.json")])
    assert (await Patient.select(Patient.phone_is_own).where(Patient.mrn == mrn).first())[
        "phone_is_own"
    ] is True
    second = _patient(mrn, birthDate=birth, telecom=[{"system": "phone", "value": parent_phone}])
    await fhir_import([_write(tmp_path, _bundle(second), "t2.json")])
    row = (
        await Patient.select(Patient.id, Patient.phone, Patient.phone_is_own)
        .where(Patient.mrn == mrn)
        .first()
    )
    assert row["phone"] == parent_phone
    assert row["phone_is_own"] is False
    assert (await _people_with_contact("sms", parent_phone)).account is None
    await send_result_ready(patient_id=row["id"], report_public_id="r", confidential=True)
    assert await OutboxMessage.count().where(OutboxMessage.recipient == parent_phone) == 0


async def test_a_deceased_patient_s_record_contact_gets_no_notice() -> None:
    from app.notices.results import send_result_ready
    from tests.factories import make_patient, phone_number, with_contacts

    patient = await make_patient(given="Late")
    phone = phone_number()
    await with_contacts(patient, phone=phone)
    await Patient.update({Patient.deceased_at: datetime.now(UTC)}).where(Patient.id == patient.id)
    told = await send_result_ready(patient_id=patient.id, report_public_id="r1", confidential=False)
    assert told == 0
    assert await OutboxMessage.count().where(OutboxMessage.recipient == phone) == 0


def _condition(cid: str, mrn: str, text: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": text, "coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
    }
    resource.update(extra)
    return resource


async def test_a_reused_resource_id_never_moves_a_row_to_another_patient(tmp_path: Path) -> None:
    a, b = unique("A"), unique("B")
    cid = unique("c")
    restricted = {"security": [{"code": "R"}]}
    await fhir_import(
        [
            _write(
                tmp_path, _bundle(_patient(a), _condition(cid, a, "HIV", meta=restricted)), "a.json"
            )
        ]
    )
    pa = await Patient.select(Patient.id).where(Patient.mrn == a).first()
    row = await Problem.select(Problem.id).where(Problem.patient == pa["id"]).first()
    report = await fhir_import(
        [_write(tmp_path, _bundle(_patient(b), _condition(cid, b, "Asthma")), "b.json")]
    )
    assert _lines(report)[cid][0] == "skipped"
    assert "another patient" in _lines(report)[cid][1]
    kept = (
        await Problem.select(Problem.patient, Problem.name).where(Problem.id == row["id"]).first()
    )
    assert kept["patient"] == pa["id"]
    assert await Problem.count().where(Problem.patient == pa["id"]) == 1


async def test_meta_source_does_not_choose_the_import_key(tmp_path: Path) -> None:
    a, b = unique("A"), unique("B")
    cid = unique("c")
    first = _bundle(_patient(a), _condition(cid, a, "Depression"))
    await fhir_import([_write(tmp_path, first, "a.json")], source="clinic-one")
    pa = await Patient.select(Patient.id).where(Patient.mrn == a).first()
    row = await Problem.select(Problem.id).where(Problem.patient == pa["id"]).first()
    other = _condition(cid, b, "Other", meta={"source": "clinic-one"})
    report = await fhir_import(
        [_write(tmp_path, _bundle(_patient(b), other), "b.json")], source="clinic-two"
    )
    assert _lines(report)[cid][0] == "created"
    kept = await Problem.select(Problem.patient).where(Problem.id == row["id"]).first()
    assert kept["patient"] == pa["id"]


async def test_an_mrn_of_another_identifier_system_is_another_person(tmp_path: Path) -> None:
    value = unique("M")
    first = _patient(value, telecom=[{"system": "phone", "value": "+15550100001"}])
    await fhir_import([_write(tmp_path, _bundle(first), "h1.json")], source="hospital")
    other = _patient(value, id="lab-7", telecom=[{"system": "phone", "value": "+15550100999"}])
    other["identifier"] = [dict(other["identifier"][0], system="urn:some-lab")]
    other["name"] = [{"family": "Stranger", "given": ["Someone"]}]
    report = await fhir_import([_write(tmp_path, _bundle(other), "l1.json")], source="lab")
    assert _lines(report)["lab-7"][0] == "skipped"
    assert "another identifier system" in _lines(report)["lab-7"][1]
    rows = await Patient.select(Patient.family_name, Patient.phone, Patient.mrn_system).where(
        Patient.mrn == value
    )
    assert rows == [{"family_name": "Núñez", "phone": "+15550100001", "mrn_system": "urn:test"}]
    # The same system from another source is the same person.
    same = _patient(value, id="h-9", telecom=[{"system": "phone", "value": "+15550100002"}])
    report = await fhir_import([_write(tmp_path, _bundle(same), "h2.json")], source="hospital-2")
    assert _lines(report)["h-9"][0] == "updated"


async def test_a_deeply_nested_ndjson_line_is_one_skipped_line(tmp_path: Path) -> None:
    mrn = unique("N")
    path = tmp_path / "Patient.ndjson"
    deep = "[" * 200_000 + "]" * 200_000
    path.write_text(deep + "\n" + json.dumps(_patient(mrn)) + "\n", encoding="utf-8")
    report = await fhir_import([path])
    assert _lines(report)["Patient.ndjson:1"] == (
        "skipped",
        "not JSON this portal reads: nested too deeply",
    )
    assert await Patient.count().where(Patient.mrn == mrn) == 1


async def test_a_deeply_nested_bundle_is_skipped_and_the_next_file_imports(
    tmp_path: Path,
) -> None:
    mrn = unique("N")
    good = _write(tmp_path, _bundle(_patient(mrn)), "z-good.json")
    bad = tmp_path / "a-bad.json"
    bad.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    report = await fhir_import([bad, good])
    assert _lines(report)["a-bad.json"][0] == "skipped"
    assert await Patient.count().where(Patient.mrn == mrn) == 1


async def test_a_malformed_practitioner_is_skipped_and_the_run_goes_on(tmp_path: Path) -> None:
    mrn = unique("N")
    practitioner = {"resourceType": "Practitioner", "id": "pr1", "name": "Dr Who"}
    odd_meta = {"resourceType": "Organization", "id": "org1", "name": "X", "meta": "odd"}
    bad = _write(tmp_path, _bundle(practitioner, odd_meta), "a.json")
    good = _write(tmp_path, _bundle(_patient(mrn)), "b.json")
    report = await fhir_import([bad, good])
    assert _lines(report)["pr1"][0] == "skipped"
    assert _lines(report)["org1"][0] == "skipped"
    assert await Patient.count().where(Patient.mrn == mrn) == 1


async def test_a_non_utf8_ndjson_line_is_one_skipped_line(tmp_path: Path) -> None:
    mrn = unique("N")
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(b"\xff\xfe{}\n" + json.dumps(_patient(mrn)).encode() + b"\n")
    report = await fhir_import([path])
    assert _lines(report)["Patient.ndjson:1"] == ("skipped", "not UTF-8 text")
    assert await Patient.count().where(Patient.mrn == mrn) == 1


async def test_an_imported_document_over_10_mb_is_skipped(tmp_path: Path) -> None:
    mrn = unique("S")
    data = b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024)
    doc = {
        "resourceType": "DocumentReference",
        "id": unique("d"),
        "status": "current",
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(data).decode(),
                }
            }
        ],
    }
    report = await fhir_import([_write(tmp_path, _bundle(_patient(mrn), doc), "s.json")])
    assert _lines(report)[doc["id"]] == ("skipped", "the PDF is larger than 10 MB")
    patient = await Patient.select(Patient.id).where(Patient.mrn == mrn).first()
    assert await RecordDocument.count().where(RecordDocument.patient == patient["id"]) == 0


async def test_an_overlong_ndjson_line_and_an_oversized_bundle_are_skipped(
    tmp_path: Path,
) -> None:
    from app.services.record.fhir_import import ImportReport, _bundle_entries, _ndjson_entries

    mrn = unique("L")
    path = tmp_path / "Patient.ndjson"
    path.write_text("x" * 3000 + "\n" + json.dumps(_patient(mrn)) + "\n", encoding="utf-8")
    report = ImportReport()
    entries = list(_ndjson_entries(path, report, max_line=2048))
    assert [entry.id for entry in entries] == [f"p-{mrn}"]
    assert str(report.lines[0]).startswith("skipped   ?/Patient.ndjson:1  line longer than")
    big = _write(tmp_path, _bundle(_patient(mrn)), "big.json")
    report = ImportReport()
    assert _bundle_entries(big, report, max_bytes=100) == []
    assert report.lines[0].outcome == "skipped"
    assert "larger than" in report.lines[0].reason


async def test_an_imported_report_within_the_clinic_s_hold_is_held(tmp_path: Path) -> None:
    mrn = unique("H")
    issued = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    pathology = {
        "coding": [{"system": "http://loinc.org", "code": "22637-3"}],
        "text": "Pathology report",
    }
    obs = _lab(mrn, unique("o"), code=pathology, effectiveDateTime=issued, valueString="Malignant")
    obs.pop("valueQuantity")
    rep = {
        "resourceType": "DiagnosticReport",
        "id": unique("r"),
        "status": "final",
        "code": pathology,
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "effectiveDateTime": issued,
        "issued": issued,
        "result": [{"reference": f"urn:uuid:{obs['id']}"}],
    }
    old = dict(
        rep,
        id=unique("r"),
        issued="2020-01-01T10:00:00+00:00",
        effectiveDateTime="2020-01-01T10:00:00+00:00",
        result=[],
    )
    await fhir_import([_write(tmp_path, _bundle(_patient(mrn), rep, obs, old), "h.json")])
    patient = await Patient.select(Patient.id).where(Patient.mrn == mrn).first()
    rows = (
        await LabReport.select(LabReport.released_at, LabReport.hold_until)
        .where(LabReport.patient == patient["id"])
        .order_by(LabReport.issued_at)
    )
    assert rows[0]["released_at"] is not None
    assert rows[0]["hold_until"] is None
    assert rows[1]["released_at"] is None
    assert rows[1]["hold_until"] is not None


async def test_a_document_hangs_only_on_a_visit_of_its_own_patient(tmp_path: Path) -> None:
    from app.services.record import record_overview

    victim = await make_person("Victim")
    await make_record(victim.patient)
    visit = (
        await VisitSummary.select(VisitSummary.id, VisitSummary.public_id)
        .where(VisitSummary.patient == victim.patient.id)
        .first()
    )
    mrn = unique("D")
    doc = {
        "resourceType": "DocumentReference",
        "id": unique("d"),
        "status": "current",
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(simple_pdf("x", ["y"])).decode(),
                }
            }
        ],
        "context": {"encounter": [{"reference": f"Patient/p-{mrn}"}]},
    }
    report = await fhir_import([_write(tmp_path, _bundle(_patient(mrn), doc), "d.json")])
    assert _lines(report)[doc["id"]] == ("created", "its visit was not found: kept without one")
    patient = await Patient.select(Patient.id).where(Patient.mrn == mrn).first()
    row = (
        await RecordDocument.select(RecordDocument.visit)
        .where(RecordDocument.patient == patient["id"])
        .first()
    )
    assert row["visit"] is None
    # A row that points at another patient's visit (written before) is not counted there.
    shown = (await record_overview(await victim.context())).visits
    before = next(v for v in shown if v.public_id == visit["public_id"])
    await RecordDocument.update({RecordDocument.visit: visit["id"]}).where(
        RecordDocument.patient == patient["id"]
    )
    record = await record_overview(await victim.context())
    line = next(v for v in record.visits if v.public_id == before.public_id)
    assert line.documents == before.documents
