"""Who may hold a patient's own ("self") access, and through which phone or email.

docs/security.md's age rules: a child under the adolescent age has no account of their own (a
parent or guardian acts for them). A teenager may have one, but only through a contact the
clinic marked as theirs, and never through one that belongs to a parent or guardian with
access to the record (a family phone would open the teenager's confidential items to the
parent). Every way to a self account asks here: enrollment links, the clinic poster, sign-in
codes and the `portal invite` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.services.access import GUARDIAN_RELATIONSHIPS, age_rules
from app.services.clinic import clinic_today
from app.services.clock import utcnow
from app.tables import AccessGrant, CaregiverInvite, Patient

# Why a self account is refused: `child` (under the adolescent age), `no_own_contact` (a
# teenager without a contact marked as theirs), `guardian_contact` (it is a guardian's).
REASONS = ("child", "no_own_contact", "guardian_contact")


class SelfAccessError(Exception):
    """A self account this record may not have; `reason` is one of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Holder:
    """What the rules look at on a record."""

    id: int
    birth_date: date
    phone: str | None
    email: str | None
    phone_is_own: bool
    email_is_own: bool


HOLDER_COLUMNS = (
    Patient.id,
    Patient.birth_date,
    Patient.phone,
    Patient.email,
    Patient.phone_is_own,
    Patient.email_is_own,
)


def holder_from(row: dict[str, Any], prefix: str = "") -> Holder:
    """A Holder from a select of HOLDER_COLUMNS (through a join: with its key prefix)."""
    return Holder(
        id=row[f"{prefix}id"],
        birth_date=row[f"{prefix}birth_date"],
        phone=row[f"{prefix}phone"],
        email=row[f"{prefix}email"],
        phone_is_own=bool(row[f"{prefix}phone_is_own"]),
        email_is_own=bool(row[f"{prefix}email_is_own"]),
    )


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def is_minor(birth: date) -> bool:
    return age_on(birth, clinic_today()) < age_rules().adult


async def guardian_contacts(patient_id: int) -> set[str]:
    """Phones and emails of the parents and guardians who have, or are invited to, access
    to this record: their account's contact and the one on their own record."""
    now = utcnow()
    grants = await AccessGrant.select(
        AccessGrant.account, AccessGrant.account.phone, AccessGrant.account.email
    ).where(
        AccessGrant.patient == patient_id,
        AccessGrant.kind == "proxy",
        AccessGrant.relationship.is_in(list(GUARDIAN_RELATIONSHIPS)),
        AccessGrant.revoked_at.is_null(),
        AccessGrant.expires_at.is_null() | (AccessGrant.expires_at > now),
    )
    found = {row[key] for row in grants for key in ("account.phone", "account.email")}
    accounts = [row["account"] for row in grants]
    if accounts:
        records = await AccessGrant.select(
            AccessGrant.patient.phone, AccessGrant.patient.email
        ).where(
            AccessGrant.account.is_in(accounts),
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
        )
        found |= {row[key] for row in records for key in ("patient.phone", "patient.email")}
    invited = await CaregiverInvite.select(CaregiverInvite.contact).where(
        CaregiverInvite.patient == patient_id,
        CaregiverInvite.relationship.is_in(list(GUARDIAN_RELATIONSHIPS)),
        CaregiverInvite.used_at.is_null(),
        CaregiverInvite.voided_at.is_null(),
        CaregiverInvite.expires_at > now,
    )
    found |= {row["contact"] for row in invited}
    return {value for value in found if value}


def own_contacts(holder: Holder) -> dict[str, str]:
    """The record's contacts marked as the patient's own, by channel (sms, email)."""
    own: dict[str, str] = {}
    if holder.phone and holder.phone_is_own:
        own["sms"] = holder.phone
    if holder.email and holder.email_is_own:
        own["email"] = holder.email
    return own


async def self_access_refusal(holder: Holder, channel: str | None) -> str | None:
    """Why this record may not have self access through `channel` (sms or email; None for a
    link handed over in person), or None when it may. Adults always may."""
    age = age_on(holder.birth_date, clinic_today())
    rules = age_rules()
    if age >= rules.adult:
        return None
    if age < rules.adolescent:
        return "child"
    own = own_contacts(holder)
    if channel is not None:
        own = {channel: own[channel]} if channel in own else {}
    if not own:
        return "no_own_contact"
    # In person (a QR code), one contact of their own is enough: later codes go there.
    if set(own.values()) <= await guardian_contacts(holder.id):
        return "guardian_contact"
    return None
