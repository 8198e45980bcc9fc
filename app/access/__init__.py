"""Who is signed in (Actor) and for whom they act (PatientContext).

A PatientContext is the only way services reach health data: every query is scoped by its
patient id, and what a proxy may see comes from the one grants selector (grants.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The grant rules live in the grants selector; these names stay importable from here.
from app.access.grants import ADOLESCENT_GUARDIAN_AREAS as ADOLESCENT_GUARDIAN_AREAS
from app.access.grants import AREAS as AREAS
from app.access.grants import GUARDIAN_RELATIONSHIPS as GUARDIAN_RELATIONSHIPS
from app.access.grants import SCOPE_AREAS as SCOPE_AREAS
from app.access.grants import AgeRules as AgeRules
from app.access.grants import Grant, live_grants, widest_per_patient
from app.access.grants import PatientRef as PatientRef
from app.access.grants import age_rules as age_rules
from app.access.grants import age_rules_set as age_rules_set
from app.clinic import clinic_today
from app.errors import NotPermittedError


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
    grants: tuple[Grant, ...] | None = field(default=None, compare=False, repr=False)


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
    grant: Grant
    profiles: tuple[Profile, ...] = ()

    @property
    def patient(self) -> PatientRef:
        return self.grant.patient

    @property
    def grant_kind(self) -> str:
        return self.grant.kind

    @property
    def grant_scope(self) -> str:
        return self.grant.scope

    @property
    def relationship(self) -> str | None:
        return self.grant.relationship

    @property
    def is_self(self) -> bool:
        return self.grant.is_self

    @property
    def is_guardian_of_adolescent(self) -> bool:
        return self.grant.is_guardian_of_adolescent(clinic_today())

    @property
    def areas(self) -> frozenset[str]:
        return self.grant.areas(clinic_today())

    def may(self, area: str) -> bool:
        return area in self.areas

    def require(self, area: str) -> None:
        if not self.may(area):
            raise NotPermittedError(area)

    @property
    def sees_confidential(self) -> bool:
        """Items marked confidential are for the patient themself only."""
        return self.grant.sees_confidential

    @property
    def is_teenager_on_own_record(self) -> bool:
        """A teenager acting for themself: what they start (a conversation, a visit) is
        confidential, theirs alone, whoever else holds a grant on the record."""
        return self.is_self and self.patient.age_on(clinic_today()) < age_rules().adult


async def patient_context_resolve(actor: Actor) -> PatientContext | None:
    """The context for the profile this device chose, else the account's own record.

    One query (the live grants selector) returns every live grant with its patient, which
    also fills the profile switcher; the session lookup usually read them already
    (Actor.grants). None when the account has no live grant.
    """
    if actor.grants is None:
        grants = widest_per_patient(await live_grants(account_id=actor.account_id))
    else:
        grants = widest_per_patient(list(actor.grants))
    if not grants:
        return None
    chosen = next(
        (grant for grant in grants if grant.patient.id == actor.acting_patient_id),
        next((grant for grant in grants if grant.is_self), grants[0]),
    )
    today = clinic_today()
    return PatientContext(
        actor=actor,
        grant=chosen,
        profiles=tuple(
            Profile(
                public_id=grant.patient.public_id,
                first_name=grant.patient.first_name,
                age=grant.patient.age_on(today),
                is_self=grant.is_self,
                is_current=grant is chosen,
                patient_id=grant.patient.id,
                areas=grant.areas(today),
            )
            for grant in grants
        ),
    )
