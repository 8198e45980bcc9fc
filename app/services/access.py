"""Who is signed in (Actor) and for whom they act (PatientContext).

A PatientContext is the only way services reach health data: every query is scoped by its
patient id, and what a proxy may see is decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.services.clinic import clinic_today
from app.services.clock import utcnow
from app.services.errors import NotPermittedError
from app.tables import AccessGrant

# Areas of a record, and which grant scopes open them.
AREAS = ("results", "appointments", "messages", "billing", "record")
SCOPE_AREAS: dict[str, frozenset[str]] = {
    "full": frozenset(AREAS),
    "appointments_billing": frozenset({"appointments", "billing"}),
    "billing": frozenset({"billing"}),
    "messages": frozenset({"messages"}),
}

# SECURITY.md's defaults for a parent's or guardian's access to a minor: full under 12; from
# 12 the guardian keeps scheduling, billing and general results (confidential items stay
# hidden); at 18 the grant ends unless the now-adult patient gave it.
GUARDIAN_RELATIONSHIPS = frozenset({"parent", "guardian"})


@dataclass(frozen=True)
class AgeRules:
    """The ages SECURITY.md's proxy rules turn on; a clinic can set them (settings.py)."""

    adolescent: int = 12
    adult: int = 18


_age_rules = AgeRules()


def age_rules() -> AgeRules:
    return _age_rules


def age_rules_set(rules: AgeRules) -> None:
    global _age_rules
    if not 0 < rules.adolescent < rules.adult:
        raise ValueError("the adolescent age must be above 0 and below the adult age")
    _age_rules = rules


ADOLESCENT_GUARDIAN_AREAS = frozenset({"appointments", "billing", "results"})


@dataclass(frozen=True)
class Actor:
    """A signed-in account on this request, with where the request came from (for audit)."""

    account_id: int
    account_public_id: str
    display_name: str
    locale: str | None
    session_id: int
    acting_patient_id: int | None
    ip: str
    user_agent: str
    # The account's live grants with their patients, read in the session's own query so a
    # request resolves its PatientContext without another; None: read them when needed.
    grants: tuple[dict[str, Any], ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StaffActor:
    """A signed-in clinic staff member on this request. Staff reach records by role, never
    through a PatientContext, and every look is audited."""

    staff_id: int
    public_id: str
    given_name: str
    family_name: str
    role: str
    session_id: int
    ip: str
    user_agent: str

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class PatientRef:
    id: int
    public_id: str
    given_name: str
    family_name: str
    preferred_name: str | None
    birth_date: date

    @property
    def first_name(self) -> str:
        return self.preferred_name or self.given_name

    def age_on(self, day: date) -> int:
        had_birthday = (day.month, day.day) >= (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - (0 if had_birthday else 1)


@dataclass(frozen=True)
class Profile:
    """Someone whose record this account may open: for the switcher."""

    public_id: str
    first_name: str
    age: int
    is_self: bool
    is_current: bool
    patient_id: int = 0
    # What this account's grant opens on that record (for "Emma has a new result").
    areas: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PatientContext:
    actor: Actor
    patient: PatientRef
    grant_kind: str
    grant_scope: str
    relationship: str | None
    profiles: tuple[Profile, ...] = ()

    @property
    def is_self(self) -> bool:
        return self.grant_kind == "self"

    @property
    def is_guardian_of_adolescent(self) -> bool:
        return _guardian_of_adolescent(self.grant_kind, self.relationship, self.patient)

    @property
    def areas(self) -> frozenset[str]:
        return _grant_areas(self.grant_kind, self.grant_scope, self.relationship, self.patient)

    def may(self, area: str) -> bool:
        return area in self.areas

    def require(self, area: str) -> None:
        if not self.may(area):
            raise NotPermittedError(area)

    @property
    def sees_confidential(self) -> bool:
        """Items marked confidential are for the patient themself only."""
        return self.is_self


# The live grants of account `a` with their patients: shared with the session lookup
# (app.services.sessions), which reads them in the same query. Two placeholders: now, now.
LIVE_GRANT_COLUMNS = """g.kind, g.scope, g.relationship, g.granted_by_account,
    p.id AS patient_id, p.public_id, p.given_name, p.family_name, p.preferred_name,
    p.birth_date"""
LIVE_GRANT_JOIN = """LEFT JOIN access_grant g ON g.account = a.id AND g.revoked_at IS NULL
        AND g.starts_at <= {} AND (g.expires_at IS NULL OR g.expires_at > {})
    LEFT JOIN patient p ON p.id = g.patient"""
LIVE_GRANT_ORDER = "g.kind DESC, p.birth_date, p.id, g.id"


async def patient_context_resolve(actor: Actor) -> PatientContext | None:
    """The context for the profile this device chose, else the account's own record.

    One query (hand-written: it runs on every request) returns every live grant with its
    patient, which also fills the profile switcher; the session lookup usually read them
    already (Actor.grants). None when the account has no live grant.
    """
    if actor.grants is not None:
        rows = list(actor.grants)
    else:
        now = utcnow()
        rows = await AccessGrant.raw(
            f"""
            SELECT {LIVE_GRANT_COLUMNS}
            FROM account a {LIVE_GRANT_JOIN}
            WHERE a.id = {{}} AND g.id IS NOT NULL
            ORDER BY {LIVE_GRANT_ORDER}
            """,  # noqa: S608  (only constant SQL is formatted in)
            now,
            now,
            actor.account_id,
        )
    rows = _one_grant_per_patient(row for row in rows if not _guardian_grant_ended(row))
    if not rows:
        return None
    chosen = next(
        (row for row in rows if row["patient_id"] == actor.acting_patient_id),
        next((row for row in rows if row["kind"] == "self"), rows[0]),
    )
    patients = {row["patient_id"]: _patient_ref(row) for row in rows}
    today = clinic_today()
    return PatientContext(
        actor=actor,
        patient=patients[chosen["patient_id"]],
        grant_kind=chosen["kind"],
        grant_scope=chosen["scope"],
        relationship=chosen["relationship"],
        profiles=tuple(
            Profile(
                public_id=ref.public_id,
                first_name=ref.first_name,
                age=ref.age_on(today),
                is_self=row["kind"] == "self",
                is_current=row is chosen,
                patient_id=ref.id,
                areas=_grant_areas(row["kind"], row["scope"], row["relationship"], ref),
            )
            for row in rows
            for ref in (patients[row["patient_id"]],)
        ),
    )


def _guardian_of_adolescent(kind: str, relationship: str | None, patient: PatientRef) -> bool:
    return (
        kind != "self"
        and relationship in GUARDIAN_RELATIONSHIPS
        and _age_rules.adolescent <= patient.age_on(clinic_today()) < _age_rules.adult
    )


def _grant_areas(
    kind: str, scope: str, relationship: str | None, patient: PatientRef
) -> frozenset[str]:
    areas = SCOPE_AREAS.get(scope, frozenset())
    if _guardian_of_adolescent(kind, relationship, patient):
        areas &= ADOLESCENT_GUARDIAN_AREAS
    return areas


def _patient_ref(row: dict[str, Any]) -> PatientRef:
    return PatientRef(
        id=row["patient_id"],
        public_id=row["public_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        preferred_name=row["preferred_name"],
        birth_date=row["birth_date"],
    )


def _guardian_grant_ended(row: dict[str, Any]) -> bool:
    """A parent's or guardian's grant that clinic staff gave for a minor ends at 18."""
    return (
        row["kind"] == "proxy"
        and row["relationship"] in GUARDIAN_RELATIONSHIPS
        and row["granted_by_account"] is None
        and _patient_ref(row).age_on(clinic_today()) >= _age_rules.adult
    )


def _one_grant_per_patient(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where two live grants cover one person, the widest one counts (in a stable order)."""
    chosen: dict[int, dict[str, Any]] = {}
    for row in rows:
        current = chosen.get(row["patient_id"])
        if current is None or _reach(row) > _reach(current):
            chosen[row["patient_id"]] = row
    return list(chosen.values())


def _reach(row: dict[str, Any]) -> int:
    return 100 if row["kind"] == "self" else len(SCOPE_AREAS.get(row["scope"], ()))
