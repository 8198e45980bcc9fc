"""When results reach the patient (Cures Act: as soon as they are final), and the clinic's
side of it: a configurable hold for chosen test types, released by itself after the hold
or earlier by a clinician, comments, and a notice with no health detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.access import StaffActor
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.i18n import current_locale
from app.notices import send_result_ready
from app.services.audit import audit_insert, audit_staff
from app.services.console.patients import audit_staff_saw
from app.services.facts import record_fact
from app.services.results.catalog import lab_name
from app.settings import get_settings
from app.tables import LabReport


@dataclass(frozen=True)
class ReleasePlan:
    released_at: datetime | None
    hold_until: datetime | None


def release_plan(loinc: str, issued_at: datetime) -> ReleasePlan:
    """Immediate by default; tests the clinic chose to hold wait PORTAL_RESULT_HOLD_HOURS."""
    settings = get_settings()
    if loinc in settings.result_hold_loincs:
        return ReleasePlan(None, issued_at + timedelta(hours=settings.result_hold_hours))
    return ReleasePlan(issued_at, None)


async def results_release_due() -> int:
    """Release held results whose hold has ended (the worker runs this every minute)."""
    now = utcnow()
    async with write_transaction():
        released = await LabReport.raw(
            """
            UPDATE lab_report SET released_at = {}
            WHERE released_at IS NULL AND hold_until IS NOT NULL AND hold_until <= {}
            RETURNING public_id, patient, confidential
            """,
            now,
            now,
        )
        for row in released:
            await record_fact("result_released", row["patient"], occurred_at=now)
            await send_result_ready(
                patient_id=row["patient"],
                report_public_id=str(row["public_id"]),
                confidential=bool(row["confidential"]),
            )
            await audit_insert(
                action="results.released_after_hold",
                patient=row["patient"],
                resource_type="DiagnosticReport",
                resource_id=row["public_id"],
            )
    return len(released)


@dataclass(frozen=True)
class InboxLine:
    public_id: str
    name: str
    patient_name: str
    mrn: str
    effective_at: datetime
    hold_until: datetime | None
    released_at: datetime | None
    clinician_comment: str | None


INBOX_SHOWS = ("all", "held", "no_note")
INBOX_PAGE_SIZE = 15
INBOX_MAX_PAGE = 10_000


@dataclass(frozen=True)
class InboxPage:
    lines: list[InboxLine]
    page: int
    has_next: bool


async def results_inbox(
    *, staff: StaffActor, show: str = "all", page: int = 1, days: int = 14
) -> InboxPage:
    """Held results first (soonest release first), then the last days' released results
    that have no comment yet; `show` keeps to one of the two, a page at a time."""
    since = utcnow() - timedelta(days=days)
    page = min(max(page, 1), INBOX_MAX_PAGE)  # an OFFSET past 64 bits is an error, not a page
    held = "r.released_at IS NULL"
    no_note = "(r.released_at > {} AND r.clinician_comment IS NULL)"
    where = {"held": held, "no_note": no_note}.get(show, f"{held} OR {no_note}")
    values: list[object] = [] if show == "held" else [since]
    rows = await LabReport.raw(
        f"""
        SELECT r.public_id, r.loinc, r.name, r.effective_at, r.hold_until, r.released_at,
               r.clinician_comment, p.given_name, p.family_name, p.mrn,
               p.id AS patient_id, p.public_id AS patient_public_id
        FROM lab_report r JOIN patient p ON p.id = r.patient
        WHERE {where}
        ORDER BY CASE WHEN r.released_at IS NULL THEN 0 ELSE 1 END,
                 r.hold_until, r.released_at DESC, r.id
        LIMIT {INBOX_PAGE_SIZE + 1} OFFSET {(page - 1) * INBOX_PAGE_SIZE}
        """,  # noqa: S608  (only fixed clauses and integers are formatted in)
        *values,
    )
    shown = rows[:INBOX_PAGE_SIZE]
    await audit_staff_saw(
        staff=staff,
        action="staff.results_inbox_view",
        patients=[(row["patient_id"], row["patient_public_id"]) for row in shown],
    )
    locale = current_locale()
    lines = [
        InboxLine(
            public_id=row["public_id"],
            # The console reads in the staff member's language, as the patient's pages do.
            name=lab_name(row["loinc"], locale, row["name"]),
            patient_name=f"{row['given_name']} {row['family_name']}",
            mrn=row["mrn"],
            effective_at=row["effective_at"],
            hold_until=row["hold_until"],
            released_at=row["released_at"],
            clinician_comment=row["clinician_comment"],
        )
        for row in shown
    ]
    return InboxPage(lines=lines, page=page, has_next=len(rows) > INBOX_PAGE_SIZE)


async def result_review(*, staff: StaffActor, public_id: str, comment: str, release: bool) -> None:
    """Add or change the care team's note, and (for a held result) release it now."""
    comment = comment.strip()
    async with write_transaction():
        report = (
            await LabReport.select(
                LabReport.id, LabReport.patient, LabReport.released_at, LabReport.confidential
            )
            .where(LabReport.public_id == public_id)
            .first()
        )
        if report is None:
            raise NotFoundError(public_id)
        values: dict[object, object] = {}
        if comment:
            values[LabReport.clinician_comment] = comment[:2000]
        releasing = release and report["released_at"] is None
        if releasing:
            values[LabReport.released_at] = utcnow()
            values[LabReport.released_by_staff] = staff.staff_id
        if values:
            await LabReport.update(values).where(LabReport.id == report["id"])  # type: ignore[arg-type]
        if releasing:
            await record_fact("result_released", report["patient"])
            await send_result_ready(
                patient_id=report["patient"],
                report_public_id=public_id,
                confidential=bool(report["confidential"]),
            )
        await audit_staff(
            staff=staff,
            action="results.released" if releasing else "results.commented",
            patient_id=report["patient"],
            resource_type="DiagnosticReport",
            resource_id=public_id,
        )
