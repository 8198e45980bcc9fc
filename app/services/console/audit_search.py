"""Searching the audit trail, for staff whose role allows it (administrators)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from app.access import StaffActor
from app.clinic import clinic_profile
from app.services.console.patients import audit_staff_saw
from app.tables import AuditEvent

MAX_RESULTS = 200


@dataclass(frozen=True)
class AuditFilters:
    mrn: str = ""
    staff_email: str = ""
    action: str = ""  # a prefix: "auth.", "staff.patient_view"
    since: date | None = None
    until: date | None = None

    @property
    def empty(self) -> bool:
        return not (self.mrn or self.staff_email or self.action or self.since or self.until)


@dataclass(frozen=True)
class AuditLine:
    id: int
    occurred_at: datetime
    action: str
    who: str
    staff_role: str | None
    patient: str
    resource: str
    ip: str


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clinic_profile().timezone)


async def audit_search(*, staff: StaffActor, filters: AuditFilters) -> list[AuditLine]:
    """Newest first, at most MAX_RESULTS rows; the search itself is audited, once for each
    patient the lines name."""
    conditions: list[str] = ["1 = 1"]
    values: list[object] = []
    if filters.mrn:
        conditions.append("p.mrn = {}")
        values.append(filters.mrn.strip().upper())
    if filters.staff_email:
        conditions.append("u.email = {}")
        values.append(filters.staff_email.strip().lower())
    if filters.action:
        # A prefix, compared without LIKE so "_" in action names is not a wildcard.
        conditions.append("SUBSTR(e.action, 1, {}) = {}")
        values.extend([len(filters.action.strip()), filters.action.strip()])
    if filters.since:
        conditions.append("e.occurred_at >= {}")
        values.append(_start_of(filters.since))
    if filters.until:
        conditions.append("e.occurred_at < {}")
        values.append(_start_of(filters.until + timedelta(days=1)))
    sql = (
        "SELECT e.id, e.occurred_at, e.action, e.resource_type, e.resource_id, e.ip,"  # noqa: S608
        " u.given_name, u.family_name, u.role, a.display_name, p.mrn,"
        " p.given_name AS patient_given, p.family_name AS patient_family,"
        " p.id AS patient_id, p.public_id AS patient_public_id"
        " FROM audit_event e"
        " LEFT JOIN staff_user u ON u.id = e.actor_staff"
        " LEFT JOIN account a ON a.id = e.actor_account"
        " LEFT JOIN patient p ON p.id = e.patient"
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY e.id DESC LIMIT {MAX_RESULTS}"
    )
    rows = await AuditEvent.raw(sql, *values)
    # The lines name patients: each one's access history shows this search.
    await audit_staff_saw(
        staff=staff,
        action="staff.audit_search",
        patients=[
            (row["patient_id"], row["patient_public_id"]) for row in rows if row["patient_id"]
        ],
    )
    return [
        AuditLine(
            id=row["id"],
            occurred_at=row["occurred_at"],
            action=row["action"],
            who=(
                f"{row['given_name']} {row['family_name']}"
                if row["given_name"]
                else row["display_name"] or ""
            ),
            staff_role=row["role"],
            patient=(
                f"{row['patient_given']} {row['patient_family']} · {row['mrn']}"
                if row["mrn"]
                else ""
            ),
            resource=f"{row['resource_type']} {row['resource_id']}".strip(),
            ip=row["ip"],
        )
        for row in rows
    ]
