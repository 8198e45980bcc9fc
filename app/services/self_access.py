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

from app.access import GUARDIAN_RELATIONSHIPS, age_rules
from app.access.grants import age_on
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.services.audit import audit_insert
from app.tables import AccessGrant, CaregiverInvite, Patient, WebSession

# Why a self account is refused: `child` (under the adolescent age), `no_own_contact` (a
# teenager without a contact marked as theirs), `guardian_contact` (it is a guardian's),
# `adult_contact` (another adult's record has it: most often a parent's phone).
REASONS = ("child", "no_own_contact", "guardian_contact", "adult_contact", "deceased")


# What `holder_from(row, prefix="patient.")` reads, over a grant's join to its record.
GRANT_HOLDER_COLUMNS = (
    AccessGrant.patient.id,
    AccessGrant.patient.birth_date,
    AccessGrant.patient.phone,
    AccessGrant.patient.email,
    AccessGrant.patient.phone_is_own,
    AccessGrant.patient.email_is_own,
    AccessGrant.patient.deceased_at,
)


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
    # A record imported as deceased gets no account, invitation or notice.
    deceased: bool = False


HOLDER_COLUMNS = (
    Patient.id,
    Patient.birth_date,
    Patient.phone,
    Patient.email,
    Patient.phone_is_own,
    Patient.email_is_own,
    Patient.deceased_at,
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
        deceased=row.get(f"{prefix}deceased_at") is not None,
    )


def is_minor(birth: date) -> bool:
    return age_on(birth, clinic_today()) < age_rules().adult


async def guardian_contacts(patient_id: int) -> set[str]:
    """Phones and emails of the parents and guardians who have, or are invited to, access
    to this record: their account's contact, the ones on every other record their account
    is linked to (their own, a partner's they help with), and the contact an accepted
    invitation went to while its grant lasts (a family phone stays the family's)."""
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
        records = await AccessGrant.select(*_LINKED_COLUMNS).where(
            AccessGrant.account.is_in(accounts),
            AccessGrant.patient != patient_id,
            AccessGrant.revoked_at.is_null(),
        )
        # Another teenager's contact marked as their own is not the guardian's.
        found |= {
            row[f"patient.{key}"]
            for row in records
            for key in ("phone", "email")
            if not row[f"patient.{key}_is_own"]
        }
    invited = await CaregiverInvite.select(CaregiverInvite.contact).where(
        CaregiverInvite.patient == patient_id,
        CaregiverInvite.relationship.is_in(list(GUARDIAN_RELATIONSHIPS)),
        CaregiverInvite.voided_at.is_null(),
        (CaregiverInvite.used_at.is_null() & (CaregiverInvite.expires_at > now))
        | CaregiverInvite.accepted_by_account.is_in(accounts or [0]),
    )
    found |= {row["contact"] for row in invited}
    return {value for value in found if value}


_LINKED_COLUMNS = (
    AccessGrant.patient.phone,
    AccessGrant.patient.email,
    AccessGrant.patient.phone_is_own,
    AccessGrant.patient.email_is_own,
)


async def adult_contacts(patient_id: int, contacts: set[str]) -> set[str]:
    """Which of `contacts` are also on another adult's record: a parent's phone, even when
    the parent holds no grant here or has no account."""
    if not contacts:
        return set()
    today = clinic_today()
    rows = await Patient.select(Patient.birth_date, Patient.phone, Patient.email).where(
        Patient.id != patient_id,
        Patient.phone.is_in(list(contacts)) | Patient.email.is_in(list(contacts)),
    )
    adults = (row for row in rows if age_on(row["birth_date"], today) >= age_rules().adult)
    return {row[key] for row in adults for key in ("phone", "email")} & contacts


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
    link handed over in person), or None when it may. Living adults always may."""
    if holder.deceased:
        return "deceased"
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
    if set(own.values()) <= await adult_contacts(holder.id, set(own.values())):
        return "adult_contact"
    return None


async def self_grants_outside_age_rules() -> int:
    """Revoke the own ("self") grants of minors that today's rules would not open, and end
    those accounts' sessions: accounts older code let a child, or a parent holding a family
    phone, open. Run at migrate time and by the worker's housekeeping; returns how many.

    A child's grant always goes (the grants selector already opens nothing for it). A
    teenager's goes unless the record now has a contact marked as the teenager's own that
    no guardian or other adult uses (`self_access_refusal`) and the account itself carries
    no guardian's contact: the clinic cannot tell whether
    the teenager or a parent opened it, and a parent holding the account would read the
    teenager's confidential items. The teenager loses nothing they cannot get back: once
    staff mark their own phone or email, a new invitation opens a fresh account."""
    today, now = clinic_today(), utcnow()
    rules = age_rules()
    oldest_minor = _birth_date_of_age(today, rules.adult)
    revoked = 0
    async with write_transaction():
        rows = await AccessGrant.select(
            AccessGrant.id,
            AccessGrant.public_id,
            AccessGrant.account,
            *GRANT_HOLDER_COLUMNS,
            AccessGrant.account.phone,
            AccessGrant.account.email,
        ).where(
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
            AccessGrant.patient.birth_date > oldest_minor,
        )
        for row in rows:
            holder = holder_from(row, prefix="patient.")
            if age_on(holder.birth_date, today) >= rules.adult:
                continue  # (an adult since the cutoff, 29 February)
            # The account itself may carry a contact too (one it was invited through).
            account_contacts = {row["account.phone"], row["account.email"]} - {None, ""}
            if await self_access_refusal(holder, None) is None and not (
                account_contacts & await guardian_contacts(holder.id)
            ):
                continue
            await AccessGrant.update(
                {AccessGrant.revoked_at: now, AccessGrant.revoked_reason: "age_rules"}
            ).where(AccessGrant.id == row["id"])
            await WebSession.update({WebSession.revoked_at: now}).where(
                WebSession.account == row["account"], WebSession.revoked_at.is_null()
            )
            await audit_insert(
                action="sharing.self_ended_by_age_rules",
                patient=holder.id,
                resource_type="AccessGrant",
                resource_id=str(row["public_id"]),
            )
            revoked += 1
    return revoked


def _birth_date_of_age(today: date, years: int) -> date:
    """The birth date of someone turning `years` today (29 February: the 28th)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return date(today.year - years, 2, 28)
