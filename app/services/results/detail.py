"""One report, or one test within it: the value, where it sits in the usual range, what it
means in plain language, the care team's note and how it has moved over time.

Everything is read through the PatientContext: another patient's id, a held result or a
confidential one the viewer may not see are all simply not found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.access import PatientContext
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.i18n import current_locale
from app.services.audit import audit_record
from app.services.facts import as_utc, clinic_day, record_fact
from app.services.results import OBSERVATION_COLUMNS, ObservationLine
from app.services.results.catalog import (
    LabExplanation,
    lab_explanation,
    lab_name,
    lab_reference_range,
)
from app.services.results.charts import RangeBar, TrendChart, range_bar, trend_chart
from app.tables import LabObservation, LabReport, Patient

TREND_POINTS = 12


@dataclass(frozen=True)
class ReportDetail:
    id: int
    public_id: str
    name: str
    effective_at: datetime
    clinician_name: str | None
    clinician_comment: str | None
    observations: tuple[ObservationLine, ...]


@dataclass(frozen=True)
class ObservationDetail:
    report: ReportDetail
    line: ObservationLine
    loinc: str
    effective_at: datetime
    # From the result, else from our catalog for this test, age and sex.
    low: float | None
    high: float | None
    range_from_catalog: bool
    bar: RangeBar | None
    explanation: LabExplanation | None
    trend: TrendChart | None
    history: tuple[tuple[datetime, float], ...]


def _released(context: PatientContext) -> tuple[str, list[object]]:
    """The SQL condition for a report this viewer may see, and its values."""
    return (
        "r.patient = {} AND r.released_at IS NOT NULL AND r.released_at <= {}"
        " AND (r.confidential = false OR {} = 1)",
        [context.patient.id, utcnow(), 1 if context.sees_confidential else 0],
    )


async def _report(context: PatientContext, public_id: str) -> ReportDetail:
    condition, values = _released(context)
    rows = await LabReport.raw(
        f"""
        SELECT r.id, r.public_id, r.loinc, r.name, r.effective_at, r.clinician_comment,
               c.prefix, c.given_name, c.family_name
        FROM lab_report r LEFT JOIN clinician c ON c.id = r.ordering_clinician
        WHERE r.public_id = {{}} AND {condition}
        """,  # noqa: S608  (a fixed condition; every value is a bound parameter)
        public_id,
        *values,
    )
    if not rows:
        raise NotFoundError(public_id)
    row = rows[0]
    observations = await (
        LabObservation.select(*OBSERVATION_COLUMNS)
        .where(LabObservation.report == row["id"], LabObservation.patient == context.patient.id)
        .order_by(LabObservation.id)
    )
    locale = current_locale()
    clinician = " ".join(
        part for part in (row["prefix"], row["given_name"], row["family_name"]) if part
    )
    return ReportDetail(
        id=row["id"],
        public_id=row["public_id"],
        name=lab_name(row["loinc"], locale, row["name"]),
        effective_at=row["effective_at"],
        clinician_name=clinician or None,
        clinician_comment=row["clinician_comment"],
        observations=tuple(ObservationLine.from_row(line, locale) for line in observations),
    )


async def report_open(context: PatientContext, public_id: str) -> ReportDetail:
    """A report with its tests; opening it is what clears "new" (and counts as viewed)."""
    context.require("results")
    async with write_transaction():
        report = await _report(context, public_id)
        now = utcnow()
        first = await (
            LabReport.update({LabReport.first_viewed_at: now})
            .where(LabReport.id == report.id, LabReport.first_viewed_at.is_null())
            .returning(LabReport.released_at)
        )
        if first and first[0]["released_at"] is not None:
            same_day = clinic_day(as_utc(first[0]["released_at"])) == clinic_day(now)
            await record_fact(
                "result_viewed", context.patient.id, occurred_at=now, value=float(same_day)
            )
        await audit_record(
            actor=context.actor,
            context=context,
            action="results.report_view",
            resource_type="DiagnosticReport",
            resource_id=public_id,
        )
    return report


async def observation_open(
    context: PatientContext, report_id: str, test_id: str
) -> ObservationDetail:
    """One test of a report, explained, with its earlier values."""
    context.require("results")
    async with write_transaction():
        report = await _report(context, report_id)
        line = next((item for item in report.observations if item.public_id == test_id), None)
        if line is None:
            raise NotFoundError(test_id)
        found = (
            await LabObservation.select(LabObservation.loinc, LabObservation.effective_at)
            .where(LabObservation.public_id == test_id)
            .first()
        )
        assert found is not None
        history = await _history(context, found["loinc"], found["effective_at"])
        await LabReport.update({LabReport.first_viewed_at: utcnow()}).where(
            LabReport.id == report.id, LabReport.first_viewed_at.is_null()
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="results.test_view",
            resource_type="Observation",
            resource_id=test_id,
        )
    low, high, from_catalog = line.reference_low, line.reference_high, False
    if high is None:
        sex = await Patient.select(Patient.sex).where(Patient.id == context.patient.id).first()
        catalog_range = lab_reference_range(
            found["loinc"],
            sex=sex["sex"] if sex else "unknown",
            age=context.patient.age_on(clinic_today()),
        )
        if catalog_range is not None:
            low, high, from_catalog = catalog_range.low, catalog_range.high, True
    value = line.value_number
    return ObservationDetail(
        report=report,
        line=line,
        loinc=found["loinc"],
        effective_at=found["effective_at"],
        low=low,
        high=high,
        range_from_catalog=from_catalog,
        bar=range_bar(value, low, high) if value is not None else None,
        explanation=lab_explanation(found["loinc"], current_locale()),
        trend=trend_chart(list(history), low, high),
        history=history,
    )


async def _history(
    context: PatientContext, loinc: str, until: datetime
) -> tuple[tuple[datetime, float], ...]:
    """This test's numeric values up to this one, oldest first (what the viewer may see)."""
    condition, values = _released(context)
    rows = await LabObservation.raw(
        f"""
        SELECT o.effective_at, o.value_number
        FROM lab_observation o JOIN lab_report r ON r.id = o.report
        WHERE o.patient = {{}} AND o.loinc = {{}} AND o.effective_at <= {{}}
          AND o.value_number IS NOT NULL AND {condition}
        ORDER BY o.effective_at DESC
        LIMIT {TREND_POINTS}
        """,  # noqa: S608  (a fixed condition and limit; every value is a bound parameter)
        context.patient.id,
        loinc,
        until,
        *values,
    )
    return tuple((row["effective_at"], float(row["value_number"])) for row in reversed(rows))
