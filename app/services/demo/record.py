"""The demo clinic's health records: medications, allergies, immunizations, problems and a
visit summary with a small PDF for each persona's family, so Health record shows real
content. Lucas (15) has a confidential medication, problem and visit: signed in as Maria,
his mother, none of them shows anywhere; signed in as Lucas they do."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.services.record.documents import document_filename, document_store, simple_pdf
from app.tables import (
    Allergy,
    Immunization,
    Medication,
    Patient,
    Problem,
    RecordDocument,
    VisitSummary,
)

DOCTOR = "Dr. Ana Ruiz"
PEDIATRICIAN = "Dr. Sam Patel"
PLACE = "Riverside Family Health"

# Per MRN: (name, RxNorm, how to take it, days since prescribed, refills left, status, confidential)
MEDICATIONS: dict[str, list[tuple[str, str, str, int, int | None, str, bool]]] = {
    "RFH-100001": [
        (
            "Levothyroxine 50 mcg tablet",
            "966222",
            "1 tablet by mouth every morning, before breakfast",
            200,
            4,
            "active",
            False,
        ),
        (
            "Amoxicillin 500 mg capsule",
            "308191",
            "1 capsule by mouth 3 times a day for 10 days",
            420,
            0,
            "completed",
            False,
        ),
    ],
    "RFH-100002": [
        (
            "Albuterol inhaler 90 mcg",
            "745679",
            "2 puffs every 4 hours when wheezing or coughing",
            150,
            1,
            "active",
            False,
        ),
    ],
    "RFH-100003": [
        (
            "Cetirizine 10 mg tablet",
            "1014678",
            "1 tablet by mouth once a day in allergy season",
            90,
            2,
            "active",
            False,
        ),
        (
            "Sertraline 50 mg tablet",
            "312940",
            "1 tablet by mouth once a day",
            60,
            3,
            "active",
            True,
        ),
    ],
    "RFH-100004": [
        (
            "Atorvastatin 20 mg tablet",
            "617312",
            "1 tablet by mouth at bedtime",
            300,
            5,
            "active",
            False,
        ),
    ],
    "RFH-100005": [
        (
            "Metoprolol succinate 25 mg tablet",
            "866412",
            "1 tablet by mouth once a day",
            500,
            3,
            "active",
            False,
        ),
        (
            "Warfarin 5 mg tablet",
            "855332",
            "As directed by the anticoagulation clinic; blood test every 4 weeks",
            500,
            2,
            "active",
            False,
        ),
    ],
    "RFH-100006": [
        (
            "Metformin 1000 mg tablet",
            "861004",
            "1 tablet by mouth twice a day with meals",
            700,
            2,
            "active",
            False,
        ),
        (
            "Lisinopril 10 mg tablet",
            "314076",
            "1 tablet by mouth once a day",
            700,
            4,
            "active",
            False,
        ),
        (
            "Glipizide 5 mg tablet",
            "310488",
            "1 tablet by mouth before breakfast",
            900,
            0,
            "stopped",
            False,
        ),
    ],
}
# Per MRN: (substance, reaction, severity)
ALLERGIES: dict[str, list[tuple[str, str, str]]] = {
    "RFH-100001": [("Sulfa drugs", "Rash", "moderate")],
    "RFH-100002": [("Peanuts", "Hives and swelling of the lips", "severe")],
    "RFH-100005": [("Codeine", "Nausea", "mild")],
    "RFH-100006": [("Penicillin", "Hives", "moderate")],
}
# Per MRN: (vaccine, CVX, days ago, lot)
IMMUNIZATIONS: dict[str, list[tuple[str, str, int, str]]] = {
    "RFH-100001": [
        ("Influenza, seasonal", "140", 40, "FL4410"),
        ("Tdap", "115", 1500, "TD2093"),
        ("COVID-19, mRNA", "300", 400, "CV8812"),
    ],
    "RFH-100002": [
        ("Influenza, seasonal", "140", 45, "FL4410"),
        ("MMR", "03", 1200, "MM1022"),
        ("DTaP", "20", 1100, "DT5541"),
        ("Varicella", "21", 1200, "VA3310"),
        ("Polio (IPV)", "10", 1100, "IP7765"),
    ],
    "RFH-100003": [
        ("Influenza, seasonal", "140", 45, "FL4410"),
        ("Tdap", "115", 1100, "TD2093"),
        ("HPV", "165", 1000, "HP6620"),
        ("Meningococcal (MenACWY)", "114", 1100, "MC1180"),
    ],
    "RFH-100004": [
        ("Influenza, seasonal", "140", 30, "FL4410"),
        ("Shingles (recombinant)", "187", 600, "SH2201"),
    ],
    "RFH-100005": [
        ("Influenza, seasonal", "140", 30, "FL4410"),
        ("Pneumococcal (PCV20)", "216", 700, "PN4471"),
    ],
    "RFH-100006": [
        ("Influenza, seasonal", "140", 35, "FL4410"),
        ("Pneumococcal (PCV20)", "216", 800, "PN4471"),
        ("Shingles (recombinant)", "187", 900, "SH2201"),
    ],
}
# Per MRN: (clinical name, plain name, SNOMED, days since onset, status, confidential)
PROBLEMS: dict[str, list[tuple[str, str, str, int, str, bool]]] = {
    "RFH-100001": [("Hypothyroidism", "Underactive thyroid", "40930008", 2000, "active", False)],
    "RFH-100002": [("Mild intermittent asthma", "Asthma", "427679007", 900, "active", False)],
    "RFH-100003": [
        ("Seasonal allergic rhinitis", "Hay fever", "367498001", 1500, "active", False),
        ("Major depressive disorder, single episode", "Depression", "36923009", 90, "active", True),
    ],
    "RFH-100004": [("Hypercholesterolemia", "High cholesterol", "13644009", 1200, "active", False)],
    "RFH-100005": [
        (
            "Atrial fibrillation",
            "Irregular heartbeat (atrial fibrillation)",
            "49436004",
            1800,
            "active",
            False,
        ),
        (
            "Osteoarthritis of knee",
            "Wear-and-tear arthritis of the knee",
            "239873007",
            3000,
            "active",
            False,
        ),
    ],
    "RFH-100006": [
        ("Type 2 diabetes mellitus", "Type 2 diabetes", "44054006", 3000, "active", False),
        ("Essential hypertension", "High blood pressure", "59621000", 2500, "active", False),
    ],
}
# Per MRN: (kind, reason, clinician, days ago, after-visit notes, confidential)
VISITS: dict[str, list[tuple[str, str, str, int, str, bool]]] = {
    "RFH-100001": [
        (
            "Yearly checkup",
            "Annual physical",
            DOCTOR,
            60,
            "Your thyroid level is on target: keep the same dose.\nGet a flu shot this fall.",
            False,
        )
    ],
    "RFH-100002": [
        (
            "Well-child visit",
            "7-year checkup",
            PEDIATRICIAN,
            45,
            "Emma is growing well. Keep the inhaler at school.\nPeanut-free lunch table.",
            False,
        )
    ],
    "RFH-100003": [
        (
            "Sports physical",
            "Cleared for soccer",
            PEDIATRICIAN,
            100,
            "Cleared for all sports. Drink water during practice.",
            False,
        ),
        (
            "Counseling visit",
            "Follow-up on mood",
            PEDIATRICIAN,
            30,
            "Keep taking sertraline daily. Call the clinic any time you feel worse.",
            True,
        ),
    ],
    "RFH-100004": [
        (
            "Office visit",
            "Cholesterol follow-up",
            DOCTOR,
            120,
            "Cholesterol improved. Keep walking most days.",
            False,
        )
    ],
    "RFH-100005": [
        (
            "Office visit",
            "Heart rhythm check",
            DOCTOR,
            50,
            "Heart rate well controlled. Next blood thinner check in 4 weeks.",
            False,
        )
    ],
    "RFH-100006": [
        (
            "Office visit",
            "Diabetes follow-up",
            DOCTOR,
            20,
            "A1c is 7.4%. Take metformin with meals.\nRecheck A1c in 3 months.",
            False,
        )
    ],
}


def _ago(today: date, days: int) -> datetime:
    return datetime.combine(today - timedelta(days=days), time(14, 30), tzinfo=UTC)


async def seed_demo_records(today: date) -> None:
    """The personas' family records (the caller's transaction)."""
    by_mrn = {
        row["mrn"]: row["id"]
        for row in await Patient.select(Patient.id, Patient.mrn).where(
            Patient.mrn.is_in(list(VISITS))
        )
    }
    rows: list[Any] = []
    for mrn, patient in by_mrn.items():
        for name, code, how, days, refills, status, private in MEDICATIONS.get(mrn, []):
            rows.append(
                Medication(
                    patient=patient,
                    name=name,
                    code=code,
                    instructions=how,
                    prescriber=PEDIATRICIAN if mrn in ("RFH-100002", "RFH-100003") else DOCTOR,
                    prescribed_at=_ago(today, days),
                    last_filled_at=_ago(today, min(days, 25)) if status == "active" else None,
                    refills_left=refills,
                    status=status,
                    confidential=private,
                )
            )
        for substance, reaction, severity in ALLERGIES.get(mrn, []):
            rows.append(
                Allergy(
                    patient=patient,
                    substance=substance,
                    reaction=reaction,
                    severity=severity,
                    recorded_at=_ago(today, 800),
                )
            )
        for vaccine, cvx, days, lot in IMMUNIZATIONS.get(mrn, []):
            rows.append(
                Immunization(
                    patient=patient,
                    vaccine=vaccine,
                    code=cvx,
                    occurred_at=_ago(today, days),
                    lot_number=lot,
                )
            )
        for name, plain, code, days, status, private in PROBLEMS.get(mrn, []):
            rows.append(
                Problem(
                    patient=patient,
                    name=name,
                    plain_name=plain,
                    code=code,
                    status=status,
                    onset_at=_ago(today, days),
                    confidential=private,
                )
            )
    for row in rows:
        await type(row).insert(row)
    for mrn, patient in by_mrn.items():
        for kind, reason, clinician, days, notes, private in VISITS[mrn]:
            visit = VisitSummary(
                patient=patient,
                kind=kind,
                reason=reason,
                clinician=clinician,
                place=PLACE,
                started_at=_ago(today, days),
                ended_at=_ago(today, days) + timedelta(minutes=30),
                notes=notes,
                confidential=private,
            )
            await VisitSummary.insert(visit)
            data = simple_pdf(
                f"After-visit summary: {reason}",
                [f"{PLACE} - {clinician}", f"Visit: {kind}", "", *notes.splitlines()],
            )
            title = f"After-visit summary, {reason}"
            await RecordDocument.insert(
                RecordDocument(
                    patient=patient,
                    visit=visit.id,
                    title=title,
                    filename=document_filename(title),
                    storage_key=await document_store(data),
                    size=len(data),
                    written_at=_ago(today, days),
                    confidential=private,
                )
            )
