""" "Download my record": the record as a FHIR R4 Bundle (JSON), and the printable summary.

The bundle holds what the reader may see, nothing more: the record area's kinds when the
grant opens it, released lab results when it opens results, and confidential items only
for the patient themself (the grants selector). It is checked with the same library the
import uses (fhir.resources' R4B models) before it leaves, and it reads back through
`portal import-fhir` into an empty portal with nothing lost: our own fields that FHIR has no
element for (a medicine's last fill, after-visit notes) travel as extensions the import
reads, a confidential item carries the R (restricted) security label, and each visit's PDF
travels inline.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from app.access import PatientContext
from app.db import write_transaction
from app.services.audit import audit_record
from app.services.record.documents import document_read
from app.services.record.fhir_import import LAST_FILLED, VISIT_NOTES
from app.tables import (
    Allergy,
    Immunization,
    LabObservation,
    LabReport,
    Medication,
    Patient,
    Problem,
    RecordDocument,
    VisitSummary,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN_SYSTEM = "urn:patient-portal:mrn"
RESTRICTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "code": "R",
    "display": "restricted",
}


def fhir_id(public_id: str) -> str:
    """A public id as a FHIR id ([A-Za-z0-9-.]): "_" becomes "." (one to one)."""
    return public_id.replace("_", ".")


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _concept(text: str, code: str = "", system: str = "", display: str = "") -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": system, "code": code, "display": display or text}]
    return concept


def _base(kind: str, row: dict[str, Any], patient_ref: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": kind, "id": fhir_id(row["public_id"])}
    if row.get("confidential"):
        resource["meta"] = {"security": [RESTRICTED]}
    key = "patient" if kind in ("AllergyIntolerance", "Immunization") else "subject"
    resource[key] = {"reference": patient_ref}
    return resource


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    return value


def _patient(row: dict[str, Any]) -> dict[str, Any]:
    birth: date = row["birth_date"]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(row["public_id"]),
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": row.get("mrn_system") or MRN_SYSTEM,
                "value": row["mrn"],
            }
        ],
        "name": [{"use": "official", "family": row["family_name"], "given": [row["given_name"]]}],
        "gender": row["sex"],
        "birthDate": birth.isoformat(),
        "telecom": [
            {"system": "phone", "value": row["phone"]} if row["phone"] else None,
            {"system": "email", "value": row["email"]} if row["email"] else None,
        ],
        "address": [
            {
                "line": [row["address_line"]] if row["address_line"] else None,
                "city": row["city"],
                "state": row["state"],
                "postalCode": row["postal_code"],
            }
        ]
        if row["address_line"] or row["city"]
        else None,
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": row["language"]}]}}
        ],
        "deceasedDateTime": _instant(row["deceased_at"]),
    }
    resource["telecom"] = [item for item in resource["telecom"] if item] or None
    return resource


def _medication(row: dict[str, Any], ref: str) -> dict[str, Any]:
    resource = _base("MedicationRequest", row, ref)
    resource |= {
        "status": row["status"],
        "intent": "order",
        "medicationCodeableConcept": _concept(row["name"], row["code"], RXNORM),
        "authoredOn": _instant(row["prescribed_at"]),
        "requester": {"display": row["prescriber"]} if row["prescriber"] else None,
        "dosageInstruction": [{"text": row["instructions"]}] if row["instructions"] else None,
        "dispenseRequest": {"numberOfRepeatsAllowed": row["refills_left"]}
        if row["refills_left"] is not None
        else None,
        "extension": [{"url": LAST_FILLED, "valueDateTime": _instant(row["last_filled_at"])}]
        if row["last_filled_at"]
        else None,
    }
    return resource


def _allergy(row: dict[str, Any], ref: str) -> dict[str, Any]:
    resource = _base("AllergyIntolerance", row, ref)
    reaction: dict[str, Any] | None = None
    if row["reaction"] or row["severity"]:
        reaction = {
            "manifestation": [{"text": row["reaction"] or "reaction"}],
            "severity": row["severity"] or None,
        }
    resource |= {
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": row["status"],
                }
            ]
        },
        "code": _concept(row["substance"], row["code"], SNOMED),
        "recordedDate": _instant(row["recorded_at"]),
        "reaction": [reaction] if reaction else None,
    }
    return resource


def _immunization(row: dict[str, Any], ref: str) -> dict[str, Any]:
    resource = _base("Immunization", row, ref)
    resource |= {
        "status": row["status"],
        "vaccineCode": _concept(row["vaccine"], row["code"], CVX),
        "occurrenceDateTime": _instant(row["occurred_at"]),
        "lotNumber": row["lot_number"],
    }
    return resource


def _problem(row: dict[str, Any], ref: str) -> dict[str, Any]:
    resource = _base("Condition", row, ref)
    concept = _concept(row["plain_name"] or row["name"], row["code"], SNOMED, row["name"])
    if not row["code"] and row["plain_name"]:
        concept["coding"] = [{"display": row["name"]}]
    resource |= {
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": row["status"],
                }
            ]
        },
        "code": concept,
        "onsetDateTime": _instant(row["onset_at"]),
        "abatementDateTime": _instant(row["abated_at"]),
    }
    return resource


def _visit(row: dict[str, Any], ref: str) -> dict[str, Any]:
    resource = _base("Encounter", row, ref)
    resource |= {
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
        },
        "type": [{"text": row["kind"]}] if row["kind"] else None,
        "reasonCode": [{"text": row["reason"]}] if row["reason"] else None,
        "participant": [{"individual": {"display": row["clinician"]}}]
        if row["clinician"]
        else None,
        "serviceProvider": {"display": row["place"]} if row["place"] else None,
        "period": {"start": _instant(row["started_at"]), "end": _instant(row["ended_at"])},
        "extension": [{"url": VISIT_NOTES, "valueString": row["notes"]}] if row["notes"] else None,
    }
    return resource


def _document(row: dict[str, Any], ref: str, data: bytes, visit_ref: str | None) -> dict[str, Any]:
    resource = _base("DocumentReference", row, ref)
    resource |= {
        "status": "current",
        "date": _instant(row["written_at"]),
        "description": row["title"],
        "content": [
            {
                "attachment": {
                    "contentType": row["media_type"],
                    "title": row["title"],
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                }
            }
        ],
        "context": {"encounter": [{"reference": visit_ref}]} if visit_ref else None,
    }
    return resource


def _lab_report(row: dict[str, Any], ref: str, results: list[str]) -> dict[str, Any]:
    resource = _base("DiagnosticReport", row, ref)
    resource |= {
        "status": row["status"],
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
        ],
        "code": _concept(row["name"], row["loinc"], LOINC),
        "effectiveDateTime": _instant(row["effective_at"]),
        "issued": _instant(row["released_at"] or row["issued_at"]),
        "conclusion": row["clinician_comment"],
        "result": [{"reference": f"Observation/{fhir_id(result)}"} for result in results] or None,
    }
    return resource


def _observation(row: dict[str, Any], ref: str, confidential: bool) -> dict[str, Any]:
    resource = _base("Observation", row | {"confidential": confidential}, ref)
    ranged: dict[str, Any] = {}
    if row["reference_low"] is not None:
        ranged["low"] = {"value": row["reference_low"], "unit": row["unit"] or None}
    if row["reference_high"] is not None:
        ranged["high"] = {"value": row["reference_high"], "unit": row["unit"] or None}
    resource |= {
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
        "code": _concept(row["name"], row["loinc"], LOINC),
        "effectiveDateTime": _instant(row["effective_at"]),
        "valueQuantity": {
            "value": row["value_number"],
            "unit": row["unit"] or None,
            "system": UCUM if row["unit"] else None,
            "code": row["unit"] or None,
        }
        if row["value_number"] is not None
        else None,
        "valueString": row["value_text"] if row["value_number"] is None else None,
        "referenceRange": [ranged] if ranged else None,
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": row["interpretation"],
                    }
                ]
            }
        ]
        if row["interpretation"]
        else None,
    }
    return resource


async def _rows(table: Any, patient_id: int, sees_confidential: bool) -> list[dict[str, Any]]:
    query = table.select().where(table.patient == patient_id).order_by(table.id)
    if not sees_confidential:
        query = query.where(table.confidential.eq(False))
    rows: list[dict[str, Any]] = await query
    return rows


async def patient_bundle(
    patient_id: int, *, sees_confidential: bool, record: bool = True, results: bool = True
) -> dict[str, Any]:
    """The patient's record as a FHIR R4 collection Bundle (a dict), checked before use."""
    patient = await Patient.select().where(Patient.id == patient_id).first()
    if patient is None:
        raise LookupError(patient_id)
    patient["language"] = patient["preferred_language"]
    ref = f"Patient/{fhir_id(patient['public_id'])}"
    resources: list[dict[str, Any]] = [_patient(patient)]
    if record:
        visits = await _rows(VisitSummary, patient_id, sees_confidential)
        visit_refs = {row["id"]: f"Encounter/{fhir_id(row['public_id'])}" for row in visits}
        resources += [_visit(row, ref) for row in visits]
        for table, build in (
            (Medication, _medication),
            (Allergy, _allergy),
            (Immunization, _immunization),
            (Problem, _problem),
        ):
            resources += [
                build(row, ref) for row in await _rows(table, patient_id, sees_confidential)
            ]
        for row in await _rows(RecordDocument, patient_id, sees_confidential):
            if not sees_confidential and row["visit"] not in (None, *visit_refs):
                continue  # the document of a visit the reader may not see
            data = await document_read(row["storage_key"])
            resources.append(_document(row, ref, data, visit_refs.get(row["visit"])))
    if results:
        reports = [
            row
            for row in await _rows(LabReport, patient_id, sees_confidential)
            if row["released_at"] is not None
        ]
        observations = (
            await LabObservation.select()
            .where(
                LabObservation.patient == patient_id,
                LabObservation.report.is_in([row["id"] for row in reports] or [0]),
            )
            .order_by(LabObservation.id)
        )
        by_report: dict[int, list[dict[str, Any]]] = {}
        for row in observations:
            by_report.setdefault(row["report"], []).append(row)
        for report in reports:
            tests = by_report.get(report["id"], [])
            resources.append(_lab_report(report, ref, [row["public_id"] for row in tests]))
            resources += [_observation(row, ref, report["confidential"]) for row in tests]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": _drop_none(resource)} for resource in resources],
    }
    Bundle.model_validate(bundle)
    return bundle


async def record_export(context: PatientContext) -> bytes:
    """ "Download my record": what this reader may see, as FHIR R4 JSON; audited."""
    context.require("record")
    async with write_transaction():
        await audit_record(
            actor=context.actor, context=context, action="record.export", resource_type="Bundle"
        )
        bundle = await patient_bundle(
            context.patient.id,
            sees_confidential=context.sees_confidential,
            results=context.may("results"),
        )
    return json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8")
