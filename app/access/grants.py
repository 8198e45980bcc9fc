"""Live grants: who may act for which record right now, and what each grant opens.

The one place that answers "is this grant live?" (not revoked, started, not expired, and
within docs/security.md's age rules) and "what does it open?". Access (the PatientContext and the
profile switcher), notices, home's family news and the caregiver lists all read grants
through `live_grants`, so a rule changed here changes everywhere at once. Housekeeping
(`guardian_grants_end_at_adulthood`, `self_grants_outside_age_rules`) makes final what this
selector enforces on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.clinic import clinic_today
from app.clock import utcnow
from app.tables import AccessGrant

# Areas of a record, and which grant scopes open them.
AREAS = ("results", "appointments", "messages", "billing", "record")
SCOPE_AREAS: dict[str, frozenset[str]] = {
    "full": frozenset(AREAS),
    "appointments_billing": frozenset({"appointments", "billing"}),
    "billing": frozenset({"billing"}),
    "messages": frozenset({"messages"}),
}

# docs/security.md's defaults for a parent's or guardian's access to a minor: full under 12; from
# 12 the guardian keeps scheduling, billing, general results and the general health record
# (immunizations for school forms, allergies; confidential items stay hidden); at 18 the
# grant ends unless the now-adult patient gave it.
GUARDIAN_RELATIONSHIPS = frozenset({"parent", "guardian"})
ADOLESCENT_GUARDIAN_AREAS = frozenset({"appointments", "billing", "results", "record"})


@dataclass(frozen=True)
class AgeRules:
    """The ages docs/security.md's proxy rules turn on; a clinic can set them (settings.py)."""

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


def age_on(birth_date: date, day: date) -> int:
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)


@dataclass(frozen=True)
class PatientRef:
    id: int
    public_id: str
    given_name: str
    family_name: str
    preferred_name: str | None
    birth_date: date
    # A deceased patient's record opens to no one and no notice is sent about it.
    deceased: bool = False

    @property
    def first_name(self) -> str:
        return self.preferred_name or self.given_name

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)


@dataclass(frozen=True)
class Grant:
    """One access grant with its patient, as stored (live or not)."""

    id: int
    public_id: str
    account_id: int
    account_name: str
    patient: PatientRef
    kind: str  # self | proxy
    scope: str
    relationship: str | None
    granted_by_account: int | None
    granted_by_staff: int | None
    starts_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None

    @property
    def is_self(self) -> bool:
        return self.kind == "self"

    @property
    def is_clinic_given_guardian(self) -> bool:
        """A parent's or guardian's grant the clinic gave for a minor (not one an adult
        patient chose to give): the age rules apply to it."""
        return (
            self.kind == "proxy"
            and self.relationship in GUARDIAN_RELATIONSHIPS
            and self.granted_by_account is None
        )

    def is_guardian_of_adolescent(self, today: date) -> bool:
        return (
            not self.is_self
            and self.relationship in GUARDIAN_RELATIONSHIPS
            and _age_rules.adolescent <= self.patient.age_on(today) < _age_rules.adult
        )

    def ended_by_age(self, today: date) -> bool:
        """Clinic-given guardian access ends on the patient's adult birthday (clinic time),
        whether or not housekeeping has marked it yet."""
        return self.is_clinic_given_guardian and self.patient.age_on(today) >= _age_rules.adult

    def is_child_self(self, today: date) -> bool:
        """A child's own grant: children have no account of their own (SECURITY.md). Older
        code could open one; whatever signs that account in, it opens nothing."""
        return self.is_self and self.patient.age_on(today) < _age_rules.adolescent

    def is_live(self, now: datetime, today: date) -> bool:
        return (
            self.revoked_at is None
            and self.starts_at <= now
            and (self.expires_at is None or self.expires_at > now)
            and not self.ended_by_age(today)
            and not self.is_child_self(today)
            and not self.patient.deceased
        )

    def areas(self, today: date) -> frozenset[str]:
        """The areas of the record this grant opens on `today`."""
        areas = SCOPE_AREAS.get(self.scope, frozenset())
        if self.is_guardian_of_adolescent(today):
            areas &= ADOLESCENT_GUARDIAN_AREAS
        return areas

    @property
    def sees_confidential(self) -> bool:
        """Items marked confidential are for the patient themself only: never a proxy's,
        and so never a guardian's from the adolescent age on."""
        return self.is_self

    def may_hear_of(self, area: str | None, confidential: bool, today: date) -> bool:
        """Whether a notice about an item in `area` (None: about the record as a whole)
        may go to this grant's account: even "you have a new result" would tell."""
        if confidential and not self.sees_confidential:
            return False
        return area is None or area in self.areas(today)

    @property
    def reach(self) -> int:
        """How much a grant opens, to keep the widest where two cover one person."""
        return 100 if self.is_self else len(SCOPE_AREAS.get(self.scope, ()))


# A Grant's columns over access_grant g, patient p and account a, aliased so they can sit
# beside other tables' columns: the session lookup (sessions.py) reads an account's grants in
# its own query with these, so a request needs no second query for its PatientContext.
GRANT_COLUMNS = """g.id AS grant_id, g.public_id AS grant_public_id, g.account AS grant_account,
       a.display_name AS grant_account_name, g.kind, g.scope, g.relationship,
       g.granted_by_account, g.granted_by_staff, g.starts_at, g.expires_at,
       p.id AS patient_id, p.public_id AS patient_public_id, p.given_name,
       p.family_name, p.preferred_name, p.birth_date, p.deceased_at"""
GRANT_ORDER = "g.kind DESC, p.birth_date, p.id, g.id"
# A grant not revoked, started and not expired (placeholders: now, now). The age rules are
# applied by `grants_live`, in Python, for every read alike.
_CURRENT = (
    "g.revoked_at IS NULL AND g.starts_at <= {} AND (g.expires_at IS NULL OR g.expires_at > {})"
)
# The grants of account `a` that are current, with their patients.
ACCOUNT_GRANTS_JOIN = f"""LEFT JOIN access_grant g ON g.account = a.id AND {_CURRENT}
    LEFT JOIN patient p ON p.id = g.patient"""


async def live_grants(
    *, account_id: int | None = None, patient_id: int | None = None, kind: str | None = None
) -> list[Grant]:
    """The live grants of an account, or on a patient's record, with their patients: one
    query (it runs on every request), then the age rules. Own record first, then by age."""
    if account_id is None and patient_id is None:
        raise ValueError("live_grants needs an account or a patient")
    now = utcnow()
    conditions = [_CURRENT]
    values: list[Any] = [now, now]
    for column, value in (("g.account", account_id), ("g.patient", patient_id), ("g.kind", kind)):
        if value is not None:
            conditions.append(f"{column} = {{}}")
            values.append(value)
    rows = await AccessGrant.raw(
        f"""
        SELECT {GRANT_COLUMNS}
        FROM access_grant g
        JOIN patient p ON p.id = g.patient
        JOIN account a ON a.id = g.account
        WHERE {" AND ".join(conditions)}
        ORDER BY {GRANT_ORDER}
        """,  # noqa: S608  (only fixed column names are formatted in)
        *values,
    )
    return grants_live(rows, now)


def grants_live(rows: Iterable[dict[str, Any]], now: datetime | None = None) -> list[Grant]:
    """The live ones among rows read with GRANT_COLUMNS (rows without a grant are skipped)."""
    now, today = now or utcnow(), clinic_today()
    grants = (_grant(row) for row in rows if row["grant_id"] is not None)
    return [grant for grant in grants if grant.is_live(now, today)]


def widest_per_patient(grants: list[Grant]) -> list[Grant]:
    """Where two live grants cover one person, the widest one counts (in a stable order)."""
    chosen: dict[int, Grant] = {}
    for grant in grants:
        current = chosen.get(grant.patient.id)
        if current is None or grant.reach > current.reach:
            chosen[grant.patient.id] = grant
    return list(chosen.values())


def _grant(row: dict[str, Any]) -> Grant:
    return Grant(
        id=row["grant_id"],
        public_id=str(row["grant_public_id"]),
        account_id=row["grant_account"],
        account_name=row["grant_account_name"],
        patient=PatientRef(
            id=row["patient_id"],
            public_id=str(row["patient_public_id"]),
            given_name=row["given_name"],
            family_name=row["family_name"],
            preferred_name=row["preferred_name"],
            birth_date=row["birth_date"],
            deceased=row.get("deceased_at") is not None,
        ),
        kind=row["kind"],
        scope=row["scope"],
        relationship=row["relationship"],
        granted_by_account=row["granted_by_account"],
        granted_by_staff=row["granted_by_staff"],
        starts_at=row["starts_at"],
        expires_at=row["expires_at"],
    )
