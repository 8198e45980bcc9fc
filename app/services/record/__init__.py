"""The health record for one patient: medications, allergies, immunizations, problems and
visit summaries with their documents, each read through the PatientContext.

The record area must be open to the grant (a caregiver's scope), rows are scoped by the
context's patient id, and items marked confidential are left out unless the reader is the
patient themself (the grants selector's `sees_confidential`): a guardian of a teenager sees
the general record and never a confidential medication or problem. Every read writes an
audit row in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.table import Table

from app.access import PatientContext
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.record.documents import document_read
from app.services.results import ReportSummary, results_list
from app.tables import (
    Allergy,
    Immunization,
    Medication,
    Problem,
    RecordDocument,
    VisitSummary,
)

AREA = "record"
# Medication statuses that count as "taking now"; the rest are listed as past.
ACTIVE_MEDICATION = frozenset({"active", "on-hold", "draft"})
ACTIVE_PROBLEM = frozenset({"active", "recurrence", "relapse"})


@dataclass(frozen=True)
class MedicationLine:
    public_id: str
    name: str
    instructions: str
    prescriber: str
    prescribed_at: datetime | None
    last_filled_at: datetime | None
    refills_left: int | None
    status: str
    confidential: bool = False

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_MEDICATION


@dataclass(frozen=True)
class AllergyLine:
    public_id: str
    substance: str
    reaction: str
    severity: str
    status: str


@dataclass(frozen=True)
class ImmunizationLine:
    public_id: str
    vaccine: str
    occurred_at: datetime
    lot_number: str


@dataclass(frozen=True)
class ProblemLine:
    public_id: str
    name: str
    plain_name: str
    status: str
    onset_at: datetime | None
    abated_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_PROBLEM

    @property
    def shown_name(self) -> str:
        return self.plain_name or self.name


@dataclass(frozen=True)
class VisitLine:
    public_id: str
    kind: str
    reason: str
    clinician: str
    place: str
    started_at: datetime
    documents: int


@dataclass(frozen=True)
class DocumentLine:
    public_id: str
    title: str
    filename: str
    size: int
    written_at: datetime


@dataclass(frozen=True)
class VisitDetail:
    public_id: str
    kind: str
    reason: str
    clinician: str
    place: str
    started_at: datetime
    ended_at: datetime | None
    notes: str
    documents: tuple[DocumentLine, ...]


@dataclass(frozen=True)
class HealthRecord:
    medications: tuple[MedicationLine, ...]
    allergies: tuple[AllergyLine, ...]
    immunizations: tuple[ImmunizationLine, ...]
    problems: tuple[ProblemLine, ...]
    visits: tuple[VisitLine, ...]

    @property
    def active_medications(self) -> tuple[MedicationLine, ...]:
        return tuple(line for line in self.medications if line.is_active)

    @property
    def past_medications(self) -> tuple[MedicationLine, ...]:
        return tuple(line for line in self.medications if not line.is_active)


def _visible(table: type[Table], context: PatientContext, *columns: Any) -> Any:
    """Rows of `table` on the context's record that the reader may see."""
    patient: Any = table._meta.get_column_by_name("patient")
    query = table.select(*columns).where(patient == context.patient.id)
    if not context.sees_confidential:
        confidential: Any = table._meta.get_column_by_name("confidential")
        query = query.where(confidential.eq(False))
        if table is RecordDocument:
            # A document of a confidential visit is as confidential as the visit.
            query = query.where(
                RecordDocument.visit.is_null() | RecordDocument.visit._.confidential.eq(False)
            )
    return query


async def _medications(context: PatientContext) -> tuple[MedicationLine, ...]:
    rows = await _visible(
        Medication,
        context,
        Medication.public_id,
        Medication.name,
        Medication.instructions,
        Medication.prescriber,
        Medication.prescribed_at,
        Medication.last_filled_at,
        Medication.refills_left,
        Medication.status,
        Medication.confidential,
    ).order_by(Medication.name)
    return tuple(MedicationLine(**row) for row in rows)


async def _allergies(context: PatientContext) -> tuple[AllergyLine, ...]:
    rows = await _visible(
        Allergy,
        context,
        Allergy.public_id,
        Allergy.substance,
        Allergy.reaction,
        Allergy.severity,
        Allergy.status,
    ).order_by(Allergy.substance)
    return tuple(AllergyLine(**row) for row in rows)


async def _immunizations(context: PatientContext) -> tuple[ImmunizationLine, ...]:
    rows = (
        await _visible(
            Immunization,
            context,
            Immunization.public_id,
            Immunization.vaccine,
            Immunization.occurred_at,
            Immunization.lot_number,
        )
        .where(Immunization.status == "completed")
        .order_by(Immunization.occurred_at, ascending=False)
    )
    return tuple(ImmunizationLine(**row) for row in rows)


async def _problems(context: PatientContext) -> tuple[ProblemLine, ...]:
    rows = await _visible(
        Problem,
        context,
        Problem.public_id,
        Problem.name,
        Problem.plain_name,
        Problem.status,
        Problem.onset_at,
        Problem.abated_at,
    ).order_by(Problem.onset_at, ascending=False)
    return tuple(ProblemLine(**row) for row in rows)


async def _visits(context: PatientContext, *, limit: int) -> tuple[VisitLine, ...]:
    rows = await VisitSummary.raw(
        """
        SELECT v.public_id, v.kind, v.reason, v.clinician, v.place, v.started_at,
               (SELECT COUNT(*) FROM record_document d
                WHERE d.visit = v.id AND d.patient = v.patient
                  AND (d.confidential = false OR {} = 1)) AS documents
        FROM visit_summary v
        WHERE v.patient = {} AND (v.confidential = false OR {} = 1)
        ORDER BY v.started_at DESC
        LIMIT {}
        """,
        1 if context.sees_confidential else 0,
        context.patient.id,
        1 if context.sees_confidential else 0,
        limit,
    )
    return tuple(VisitLine(**(row | {"documents": int(row["documents"])})) for row in rows)


async def record_overview(context: PatientContext, *, visits: int = 20) -> HealthRecord:
    """The Health record page: every kind, newest visits first."""
    return await _record(context, action="record.view", visits=visits)


@dataclass(frozen=True)
class RecordSummary:
    """The printable summary: the record, and the latest released lab reports when the
    reader may see results (read through the results page's own selector and audit)."""

    record: HealthRecord
    results: tuple[ReportSummary, ...]


SUMMARY_REPORTS = 5


async def record_summary(context: PatientContext) -> RecordSummary:
    """Everything in the record the reader may see, for the printable summary."""
    record = await _record(context, action="record.summary", visits=1000)
    if not context.may("results"):
        return RecordSummary(record=record, results=())
    return RecordSummary(
        record=record, results=tuple(await results_list(context, limit=SUMMARY_REPORTS))
    )


async def _record(context: PatientContext, *, action: str, visits: int) -> HealthRecord:
    """Every kind the reader may see, audited as one look at the record."""
    context.require(AREA)
    async with write_transaction():
        await audit_record(
            actor=context.actor, context=context, action=action, resource_type="Patient"
        )
        return HealthRecord(
            medications=await _medications(context),
            allergies=await _allergies(context),
            immunizations=await _immunizations(context),
            problems=await _problems(context),
            visits=await _visits(context, limit=visits),
        )


async def record_immunizations(context: PatientContext) -> tuple[ImmunizationLine, ...]:
    """The printable immunization record (school and travel forms)."""
    context.require(AREA)
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="record.immunizations",
            resource_type="Immunization",
        )
        return await _immunizations(context)


async def record_visit_open(context: PatientContext, visit_id: str) -> VisitDetail:
    """One visit summary with its documents; another record's (or a hidden) visit is 404."""
    context.require(AREA)
    async with write_transaction():
        row = (
            await _visible(
                VisitSummary,
                context,
                VisitSummary.id,
                VisitSummary.public_id,
                VisitSummary.kind,
                VisitSummary.reason,
                VisitSummary.clinician,
                VisitSummary.place,
                VisitSummary.started_at,
                VisitSummary.ended_at,
                VisitSummary.notes,
            )
            .where(VisitSummary.public_id == visit_id)
            .first()
        )
        if row is None:
            raise NotFoundError("visit")
        documents = await _visible(
            RecordDocument,
            context,
            RecordDocument.public_id,
            RecordDocument.title,
            RecordDocument.filename,
            RecordDocument.size,
            RecordDocument.written_at,
        ).where(RecordDocument.visit == row.pop("id"))
        await audit_record(
            actor=context.actor,
            context=context,
            action="record.visit",
            resource_type="Encounter",
            resource_id=visit_id,
        )
        return VisitDetail(**row, documents=tuple(DocumentLine(**doc) for doc in documents))


async def record_document_open(
    context: PatientContext, document_id: str
) -> tuple[dict[str, str], bytes]:
    """A document's bytes with its name and type, found only among what the reader may see."""
    context.require(AREA)
    async with write_transaction():
        row = (
            await _visible(
                RecordDocument,
                context,
                RecordDocument.filename,
                RecordDocument.media_type,
                RecordDocument.storage_key,
            )
            .where(RecordDocument.public_id == document_id)
            .first()
        )
        if row is None:
            raise NotFoundError("document")
        await audit_record(
            actor=context.actor,
            context=context,
            action="record.document",
            resource_type="DocumentReference",
            resource_id=document_id,
        )
    found = {"filename": row["filename"], "media_type": row["media_type"]}
    return found, await document_read(row["storage_key"])


async def record_active_medications(context: PatientContext) -> tuple[MedicationLine, ...]:
    """What a refill request may pick: the medications taken now that the reader may see.
    The caller's transaction carries the audit row."""
    if not context.may(AREA):
        return ()
    return tuple(line for line in await _medications(context) if line.is_active)
