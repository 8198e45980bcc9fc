"""Released lab results for one patient, newest first, scoped by the PatientContext."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access import PatientContext
from app.clock import utcnow
from app.db import write_transaction
from app.i18n import current_locale
from app.services.audit import audit_record
from app.services.results.catalog import lab_name
from app.tables import LabObservation, LabReport

ABNORMAL = frozenset({"L", "H", "LL", "HH"})


@dataclass(frozen=True)
class ObservationLine:
    public_id: str
    name: str
    value_number: float | None
    value_text: str | None
    unit: str
    reference_low: float | None
    reference_high: float | None
    interpretation: str | None

    @property
    def is_abnormal(self) -> bool:
        return self.interpretation in ABNORMAL

    @classmethod
    def from_row(cls, row: dict[str, Any], locale: str) -> ObservationLine:
        """From a row of OBSERVATION_COLUMNS, the test named in the reader's language."""
        return cls(
            **{key: value for key, value in row.items() if key not in ("loinc", "report")}
            | {"name": lab_name(row["loinc"], locale, row["name"])}
        )


# What every list of tests reads, for ObservationLine.from_row.
OBSERVATION_COLUMNS = (
    LabObservation.public_id,
    LabObservation.loinc,
    LabObservation.name,
    LabObservation.value_number,
    LabObservation.value_text,
    LabObservation.unit,
    LabObservation.reference_low,
    LabObservation.reference_high,
    LabObservation.interpretation,
)


@dataclass(frozen=True)
class ReportSummary:
    public_id: str
    name: str
    effective_at: datetime
    released_at: datetime
    is_new: bool
    clinician_comment: str | None
    observations: tuple[ObservationLine, ...]

    @property
    def abnormal_count(self) -> int:
        return sum(1 for line in self.observations if line.is_abnormal)


async def _released_reports(context: PatientContext, *, limit: int) -> list[ReportSummary]:
    query = (
        LabReport.select(
            LabReport.id,
            LabReport.public_id,
            LabReport.loinc,
            LabReport.name,
            LabReport.effective_at,
            LabReport.released_at,
            LabReport.first_viewed_at,
            LabReport.clinician_comment,
        )
        .where(
            LabReport.patient == context.patient.id,
            LabReport.released_at.is_not_null(),
            LabReport.released_at <= utcnow(),
        )
        .order_by(LabReport.effective_at, ascending=False)
        .limit(limit)
    )
    if not context.sees_confidential:
        query = query.where(LabReport.confidential.eq(False))
    reports = await query
    if not reports:
        return []
    observations = (
        await LabObservation.select(LabObservation.report, *OBSERVATION_COLUMNS)
        .where(
            LabObservation.patient == context.patient.id,
            LabObservation.report.is_in([row["id"] for row in reports]),
        )
        .order_by(LabObservation.id)
    )
    by_report: dict[int, list[ObservationLine]] = {}
    locale = current_locale()
    for row in observations:
        by_report.setdefault(row["report"], []).append(ObservationLine.from_row(row, locale))
    return [
        ReportSummary(
            public_id=row["public_id"],
            name=lab_name(row["loinc"], locale, row["name"]),
            effective_at=row["effective_at"],
            released_at=row["released_at"],
            is_new=row["first_viewed_at"] is None,
            clinician_comment=row["clinician_comment"],
            observations=tuple(by_report.get(row["id"], [])),
        )
        for row in reports
    ]


async def results_list(context: PatientContext, *, limit: int = 40) -> list[ReportSummary]:
    context.require("results")
    async with write_transaction():
        await audit_record(
            actor=context.actor, context=context, action="results.list", resource_type="LabReport"
        )
        # "New" stays until the report itself is opened (result_detail.report_open).
        return await _released_reports(context, limit=limit)


@dataclass(frozen=True)
class ReportHeadline:
    """A report as the home page lists it: no values, just what needs a look."""

    public_id: str
    name: str
    effective_at: datetime
    is_new: bool
    abnormal_count: int


async def results_latest(context: PatientContext, *, limit: int) -> list[ReportHeadline]:
    """For the home page (one hand-written query); the caller's transaction carries the
    audit row."""
    if not context.may("results"):
        return []
    rows = await LabReport.raw(
        """
        SELECT r.public_id, r.loinc, r.name, r.effective_at, r.first_viewed_at,
               (SELECT COUNT(*) FROM lab_observation o
                WHERE o.report = r.id AND o.interpretation IN ('L', 'H', 'LL', 'HH')) AS abnormal
        FROM lab_report r
        WHERE r.patient = {} AND r.released_at IS NOT NULL AND r.released_at <= {}
          AND (r.confidential = false OR {} = 1)
        ORDER BY r.effective_at DESC
        LIMIT {}
        """,
        context.patient.id,
        utcnow(),
        1 if context.sees_confidential else 0,
        limit,
    )
    return [
        ReportHeadline(
            public_id=row["public_id"],
            name=lab_name(row["loinc"], current_locale(), row["name"]),
            effective_at=row["effective_at"],
            is_new=row["first_viewed_at"] is None,
            abnormal_count=int(row["abnormal"]),
        )
        for row in rows
    ]
