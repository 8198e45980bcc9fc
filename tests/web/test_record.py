"""The Health record pages: each kind readable by the patient, a visit's PDF served only
through the patient context, every view audited, and a teenager's confidential items
hidden from a guardian everywhere (lists, visit pages, documents, home, summary, download)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from httpx import AsyncClient

from app.services.record.documents import simple_pdf
from app.services.record.fhir_import import fhir_import
from app.tables import AuditEvent, Conversation, Patient, RecordDocument
from tests.factories import (
    Person,
    grant,
    make_person,
    make_record,
    make_report,
    unique,
    years_ago,
)
from tests.querycount import counting_queries
from tests.web.conftest import csrf_from, sign_in


async def test_a_patient_reads_every_kind_and_a_visit_with_its_pdf(client: AsyncClient) -> None:
    person = await make_person("Rosa")
    items = await make_record(person.patient)
    await sign_in(client, person)
    home = await client.get("/home")
    assert 'href="/record"' in home.text
    page = await client.get("/record")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    for text in (
        "Lisinopril 10 mg",
        "1 tablet by mouth once a day",
        "3 refills left",
        "Penicillin",
        "Hives",
        "Influenza, seasonal",
        "High blood pressure",
        "Blood pressure check",
    ):
        assert text in page.text, text
    visit = await client.get(f"/record/visits/{items.visit}")
    assert "Walk 30 minutes a day." in visit.text
    assert f"/record/documents/{items.document}" in visit.text
    pdf = await client.get(f"/record/documents/{items.document}")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert pdf.headers["cache-control"] == "no-store"
    actions = {
        row["action"]
        for row in await AuditEvent.select(AuditEvent.action).where(
            AuditEvent.patient == person.patient.id
        )
    }
    assert {"record.view", "record.visit", "record.document"} <= actions


async def test_the_immunization_record_and_summary_print_and_the_download_is_fhir(
    client: AsyncClient,
) -> None:
    person = await make_person("Rosa")
    await make_record(person.patient)
    await sign_in(client, person)
    shots = await client.get("/record/immunizations")
    assert "Influenza, seasonal" in shots.text
    assert "FL2291" in shots.text
    summary = await client.get("/record/summary")
    assert "Lisinopril 10 mg" in summary.text
    assert "Penicillin" in summary.text
    download = await client.get("/record/download")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/fhir+json")
    assert download.json()["resourceType"] == "Bundle"


async def test_the_printable_summary_carries_recent_released_results_the_reader_may_see(
    client: AsyncClient,
) -> None:
    teen = await make_person("Lucas", birth=years_ago(15))
    await make_report(teen.patient, name="Shown panel", value=131.0)
    await make_report(teen.patient, name="Held panel", released=False)
    await make_report(teen.patient, name="Private panel", confidential=True)
    await sign_in(client, teen)
    own = (await client.get("/record/summary")).text
    assert "Recent lab results" in own
    assert "131" in own
    assert "Private panel" in own  # the teen's own results, confidential ones too
    assert "Held panel" not in own  # not released yet: not on the results page either
    assert await AuditEvent.count().where(
        (AuditEvent.patient == teen.patient.id) & (AuditEvent.action == "results.list")
    )

    parent = await make_person("Maria")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await sign_in(client, parent, teen.patient.id)
    guardian = (await client.get("/record/summary")).text
    assert "Shown panel" in guardian
    assert "Private panel" not in guardian


async def test_another_patient_s_visit_and_document_are_not_found(client: AsyncClient) -> None:
    other = await make_person()
    items = await make_record(other.patient)
    await sign_in(client, await make_person())
    assert (await client.get(f"/record/visits/{items.visit}")).status_code == 404
    assert (await client.get(f"/record/documents/{items.document}")).status_code == 404


async def test_a_guardian_of_a_teen_never_sees_a_confidential_item(client: AsyncClient) -> None:
    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_person("Maria")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await make_record(teen.patient, label=" (general)")
    private = await make_record(teen.patient, confidential=True, label=" (private)")
    await sign_in(client, parent, teen.patient.id)
    for path in (
        "/home",
        "/record",
        "/record/summary",
        "/record/immunizations",
        "/record/download",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "(private)" not in response.text, path
    record = (await client.get("/record")).text
    assert "Lisinopril 10 mg (general)" in record
    assert (await client.get(f"/record/visits/{private.visit}")).status_code == 404
    assert (await client.get(f"/record/documents/{private.document}")).status_code == 404
    await sign_in(client, teen)
    assert "(private)" in (await client.get("/record")).text


async def test_the_record_page_costs_the_same_however_much_it_holds(client: AsyncClient) -> None:
    counts = []
    for items in (1, 6):
        person = await make_person()
        for _ in range(items):
            await make_record(person.patient)
        await sign_in(client, person)
        with counting_queries() as queries:
            response = await client.get("/record")
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # The session and context, five kinds, the audit row.
    assert counts[1] <= 8, counts


async def test_a_refill_request_picks_from_the_record_s_active_medications(
    client: AsyncClient,
) -> None:
    from app.tables import Medication, RefillRequest

    person = await make_person("Rosa")
    items = await make_record(person.patient)
    await make_record(person.patient, confidential=True, label=" (private)")
    stopped = Medication(patient=person.patient.id, name="Old pill", status="stopped")
    await Medication.insert(stopped)
    await sign_in(client, person)
    form = await client.get("/messages/new?topic=refill")
    token = csrf_from(form.text)
    assert f'value="{items.medication}"' in form.text
    assert "Lisinopril 10 mg (private)" in form.text  # the patient's own list
    assert "Old pill" not in form.text
    sent = await client.post(
        "/messages",
        data={
            "topic": "refill",
            "medication": items.medication,
            "pharmacy": "Main Street Pharmacy",
            "body": "",
            "_csrf_token": token,
        },
    )
    assert sent.status_code == 303, sent.text[:500]
    picked = await RefillRequest.select(RefillRequest.medication, RefillRequest.medication_ref)
    assert {"medication": "Lisinopril 10 mg", "medication_ref": items.medication} in picked


async def test_a_caregiver_s_refill_list_has_no_confidential_medicine(client: AsyncClient) -> None:
    elder = await make_person("Walter")
    son = await make_person("David")
    await grant(son.account, elder.patient, kind="proxy", relationship="child")
    await make_record(elder.patient, label=" (general)")
    await make_record(elder.patient, confidential=True, label=" (private)")
    await sign_in(client, son, elder.patient.id)
    form = await client.get("/messages/new?topic=refill")
    assert "Lisinopril 10 mg (general)" in form.text
    assert "(private)" not in form.text


async def test_each_synthea_patient_s_record_pages_open(client: AsyncClient) -> None:
    """The 13 Synthea patients (shared/data/fhir-synthea-r4) imported, then each record's
    pages opened as the patient (or a parent, for a child); the deceased one opens to no one."""
    import re
    from datetime import date

    import pytest
    from fhir.resources.R4B.bundle import Bundle

    from app.access.grants import age_on
    from app.services.record.fhir_import import fhir_import
    from app.tables import FhirSource, Patient
    from tests.factories import Person, make_account, synthea_files, unique

    files = synthea_files()
    if not files:
        pytest.skip("the Synthea R4 sample (shared/data/fhir-synthea-r4) is absent")
    source = unique("synthea-web")
    report = await fhir_import(files, source=source)
    assert report.patients["created"] + report.patients["updated"] == 13
    sources = await FhirSource.select(FhirSource.local_id).where(
        FhirSource.source_key.like(f"{source}|Patient/%")
    )
    patients = await Patient.objects().where(Patient.id.is_in([row["local_id"] for row in sources]))
    assert len(patients) == 13
    opened = 0
    for patient in patients:
        account = await make_account("Reader")
        child = age_on(patient.birth_date, date.today()) < 12
        if child:
            await grant(account, patient, kind="proxy", relationship="parent")
        else:
            await grant(account, patient)
        await sign_in(client, Person(account=account, patient=patient), patient.id)
        page = await client.get("/record")
        if patient.deceased_at is not None:
            assert page.status_code == 403
            continue
        assert page.status_code == 200, patient.source_id
        visit = re.search(r'href="(/record/visits/[^"]+)"', page.text)
        assert visit is not None
        assert (await client.get(visit.group(1))).status_code == 200
        assert (await client.get("/record/immunizations")).status_code == 200
        assert (await client.get("/results")).status_code == 200
        download = await client.get("/record/download")
        Bundle.model_validate(download.json())
        opened += 1
    assert opened == 12


# Confidentiality that follows references (imported FHIR) ---------------------------------------

RESTRICTED = {
    "security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    ]
}


def _fhir_patient(mrn: str, birth: str) -> dict[str, Any]:
    return {
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
        "name": [{"family": "Doe", "given": ["Teen"]}],
        "gender": "female",
        "birthDate": birth,
    }


async def _imported_teen_with_guardian(
    tmp_path: Path, *resources: dict[str, Any], mrn: str
) -> tuple[Patient, Person]:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r}
            for r in (_fhir_patient(mrn, years_ago(15).isoformat()), *resources)
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    report = await fhir_import([path])
    patient = await Patient.objects().where(Patient.mrn == mrn).first()
    assert patient is not None, [str(line) for line in report.lines]
    parent = await make_person("Parent")
    await grant(parent.account, patient, kind="proxy", relationship="parent")
    return patient, parent


async def test_a_confidential_visit_s_pdf_is_hidden_from_the_guardian(
    client: AsyncClient, tmp_path: Path
) -> None:
    mrn = unique("T")
    enc = {
        "resourceType": "Encounter",
        "id": unique("e"),
        "status": "finished",
        "meta": RESTRICTED,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": "Sexual health visit"}],
        "reasonCode": [{"text": "Contraception"}],
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "period": {"start": "2024-03-01T10:00:00+00:00"},
    }
    pdf = simple_pdf("After-visit summary", ["Contraception counselling", "IUD placed"])
    doc = {
        "resourceType": "DocumentReference",
        "id": unique("d"),
        "status": "current",
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "title": "Contraception visit summary",
                    "data": base64.b64encode(pdf).decode(),
                }
            }
        ],
        "context": {"encounter": [{"reference": f"urn:uuid:{enc['id']}"}]},
    }
    patient, parent = await _imported_teen_with_guardian(tmp_path, enc, doc, mrn=mrn)
    row = (
        await RecordDocument.select(RecordDocument.public_id, RecordDocument.confidential)
        .where(RecordDocument.patient == patient.id)
        .first()
    )
    assert row["confidential"] is True
    # A document whose own flag is off still follows its visit (rows written before the fix).
    await RecordDocument.update({RecordDocument.confidential: False}).where(
        RecordDocument.patient == patient.id
    )
    await sign_in(client, parent, patient.id)
    assert "Contraception" not in (await client.get("/record")).text
    download = await client.get("/record/download")
    assert download.status_code == 200
    assert "Contraception visit summary" not in download.text
    assert "DocumentReference" not in download.text
    opened = await client.get(f"/record/documents/{row['public_id']}")
    assert opened.status_code == 404


async def test_items_for_a_confidential_condition_are_hidden_from_the_guardian(
    client: AsyncClient, tmp_path: Path
) -> None:
    mrn = unique("T")
    chlamydia = {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "105629000",
                "display": "Chlamydial infection",
            }
        ]
    }
    cond = {
        "resourceType": "Condition",
        "id": unique("c"),
        "meta": RESTRICTED,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": chlamydia,
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "onsetDateTime": "2024-03-01T10:00:00+00:00",
    }
    enc = {
        "resourceType": "Encounter",
        "id": unique("e"),
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "reasonCode": [chlamydia],
        "reasonReference": [{"reference": f"urn:uuid:{cond['id']}"}],
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "period": {"start": "2024-03-01T10:00:00+00:00"},
    }
    med = {
        "resourceType": "MedicationRequest",
        "id": unique("m"),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Azithromycin 1 g"},
        "reasonReference": [{"reference": f"urn:uuid:{cond['id']}"}],
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "authoredOn": "2024-03-01T10:00:00+00:00",
    }
    patient, parent = await _imported_teen_with_guardian(tmp_path, enc, med, cond, mrn=mrn)
    await sign_in(client, parent, patient.id)
    page = (await client.get("/record")).text
    assert "Chlamydial infection" not in page
    assert "Azithromycin 1 g" not in page
    download = (await client.get("/record/download")).text
    assert "Chlamydial infection" not in download
    assert "Azithromycin 1 g" not in download


async def test_a_restricted_test_hides_its_whole_report_from_the_guardian(
    client: AsyncClient, tmp_path: Path
) -> None:
    mrn = unique("T")
    lab = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ]
    obs = {
        "resourceType": "Observation",
        "id": unique("o"),
        "status": "final",
        "meta": RESTRICTED,
        "category": lab,
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "75622-1"}],
            "text": "HIV 1+2 Ab+Ag",
        },
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "effectiveDateTime": "2024-03-01T10:00:00+00:00",
        "valueString": "Reactive",
    }
    report = {
        "resourceType": "DiagnosticReport",
        "id": unique("r"),
        "status": "final",
        "code": {"text": "Routine labs"},
        "subject": {"reference": f"urn:uuid:p-{mrn}"},
        "effectiveDateTime": "2024-03-01T10:00:00+00:00",
        "issued": "2024-03-01T12:00:00+00:00",
        "result": [{"reference": f"urn:uuid:{obs['id']}"}],
    }
    patient, parent = await _imported_teen_with_guardian(tmp_path, report, obs, mrn=mrn)
    await sign_in(client, parent, patient.id)
    download = await client.get("/record/download")
    assert download.status_code == 200
    assert "HIV 1+2 Ab+Ag" not in download.text
    assert "Reactive" not in download.text


async def test_a_refill_of_a_confidential_medicine_opens_a_confidential_conversation(
    client: AsyncClient,
) -> None:
    rosa = await make_person("Rosa")
    private = await make_record(rosa.patient, confidential=True, label=" (private)")
    spouse = await make_person("Spouse")
    await grant(spouse.account, rosa.patient, kind="proxy", relationship="spouse")
    await sign_in(client, rosa)
    form = await client.get("/messages/new?topic=refill")
    sent = await client.post(
        "/messages",
        data={
            "topic": "refill",
            "medication": private.medication,
            "pharmacy": "Main Street Pharmacy",
            "body": "",
            "_csrf_token": csrf_from(form.text),
        },
    )
    assert sent.status_code == 303, sent.text[:300]
    thread = (
        await Conversation.select(Conversation.public_id, Conversation.confidential)
        .where(Conversation.patient == rosa.patient.id)
        .first()
    )
    assert thread["confidential"] is True
    await sign_in(client, spouse, rosa.patient.id)
    opened = await client.get(f"/messages/{thread['public_id']}")
    assert "Lisinopril 10 mg (private)" not in opened.text
