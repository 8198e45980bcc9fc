"""Enrollment: a single-use link to the phone or email on the record, then the date of birth.

The link proves the person holds the contact the clinic has; the date of birth proves it is
them. A wrong date five times voids the link. Answers never say more than "that did not
match" or "this link no longer works".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.notices import send_enrollment_link, send_enrollment_reminder
from app.services.audit import audit_insert
from app.services.facts import record_fact
from app.services.self_access import (
    HOLDER_COLUMNS,
    SelfAccessError,
    holder_from,
    self_access_refusal,
)
from app.services.sessions import session_start
from app.tables import AccessGrant, Account, EnrollmentInvite, Patient

INVITE_LIFETIME = timedelta(days=7)
MAX_DATE_ATTEMPTS = 5
VIA = ("sms", "email", "print", "qr")


class EnrollmentError(Exception):
    """`expired`: the link no longer works; `mismatch`: the date of birth did not match."""

    def __init__(self, reason: str, attempts_left: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class Invitation:
    link: str
    via: str
    key: str | None  # the outbox key when it was sent


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite_create(
    *,
    mrn: str,
    via: str,
    base_url: str,
    clinic_name: str,
    staff_id: int | None = None,
    ip: str = "",
    user_agent: str = "",
    reminder: bool = False,
) -> Invitation:
    """A new link for the patient with this MRN (any older open link stops working); a
    reminder (the dashboard's follow-up) is worded as one.

    Raises SelfAccessError when the age rules forbid this record an account of its own
    (through this channel), ValueError when the record has no contact for it."""
    if via not in VIA:
        raise ValueError(via)
    token = secrets.token_urlsafe(24)
    link = f"{base_url}/enroll/{token}"
    now = utcnow()
    async with write_transaction():
        patient = await Patient.select(*HOLDER_COLUMNS).where(Patient.mrn == mrn).first()
        if patient is None:
            raise NotFoundError(mrn)
        refusal = await self_access_refusal(
            holder_from(patient), via if via in ("sms", "email") else None
        )
        if refusal is not None:
            raise SelfAccessError(refusal)
        recipient = {"sms": patient["phone"], "email": patient["email"]}.get(via, "-")
        if not recipient:
            raise ValueError(f"no {via} contact on the record")
        await EnrollmentInvite.update({EnrollmentInvite.voided_at: now}).where(
            EnrollmentInvite.patient == patient["id"],
            EnrollmentInvite.used_at.is_null(),
            EnrollmentInvite.voided_at.is_null(),
        )
        invite = EnrollmentInvite(
            patient=patient["id"],
            token_hash=_hash(token),
            via=via,
            created_by_staff=staff_id,
            expires_at=now + INVITE_LIFETIME,
        )
        await EnrollmentInvite.insert(invite)
        key = None
        if via in ("sms", "email"):
            send = send_enrollment_reminder if reminder else send_enrollment_link
            key = await send(
                to=(via, recipient), patient_id=patient["id"], clinic=clinic_name, link=link
            )
        kind = "invite_reminded" if reminder else "invited"
        await record_fact(kind, patient["id"], occurred_at=now, channel=via)
        await audit_insert(
            occurred_at=now,
            actor_staff=staff_id,
            patient=patient["id"],
            action=f"enrollment.invite.{via}",
            resource_type="EnrollmentInvite",
            resource_id=invite.public_id,
            ip=ip,
            user_agent=user_agent,
        )
    return Invitation(link=link, via=via, key=key)


async def _open_invite(token: str) -> dict[str, object] | None:
    now = utcnow()
    row: dict[str, object] | None = (
        await EnrollmentInvite.select(
            EnrollmentInvite.id,
            EnrollmentInvite.failed_attempts,
            EnrollmentInvite.via,
            EnrollmentInvite.patient.id,
            EnrollmentInvite.patient.birth_date,
            EnrollmentInvite.patient.phone,
            EnrollmentInvite.patient.email,
            EnrollmentInvite.patient.phone_is_own,
            EnrollmentInvite.patient.email_is_own,
            EnrollmentInvite.patient.given_name,
            EnrollmentInvite.patient.family_name,
        )
        .where(
            EnrollmentInvite.token_hash == _hash(token),
            EnrollmentInvite.used_at.is_null(),
            EnrollmentInvite.voided_at.is_null(),
            EnrollmentInvite.expires_at > now,
        )
        .first()
    )
    return row


async def _still_allowed(invite: dict[str, object]) -> bool:
    """The age rules again when the link is used: the child may have a guardian now, or the
    contact may no longer be marked as theirs, since the link was made."""
    via = str(invite["via"])
    holder = holder_from(invite, prefix="patient.")
    return await self_access_refusal(holder, via if via in ("sms", "email") else None) is None


async def invite_is_open(token: str) -> bool:
    invite = await _open_invite(token)
    return invite is not None and await _still_allowed(invite)


async def enroll_confirm(
    *, token: str, birth_date: date, lifetime: timedelta, ip: str, user_agent: str
) -> str:
    """Check the date of birth; on a match, sign the person in (creating their account the
    first time) and return the session token."""
    async with write_transaction():
        invite = await _open_invite(token)
        if invite is None:
            raise EnrollmentError("expired")
        invite_id = int(str(invite["id"]))
        patient_id = int(str(invite["patient.id"]))
        if birth_date != invite["patient.birth_date"]:
            failures = await _claim_date_failure(invite_id)
            locked = failures is None or failures >= MAX_DATE_ATTEMPTS
            await audit_insert(
                occurred_at=utcnow(),
                patient=patient_id,
                action="enrollment.date_mismatch",
                ip=ip,
                user_agent=user_agent,
            )
            failed = EnrollmentError(
                "expired" if locked else "mismatch", MAX_DATE_ATTEMPTS - (failures or 0)
            )
        elif not await _still_allowed(invite):
            await EnrollmentInvite.update({EnrollmentInvite.voided_at: utcnow()}).where(
                EnrollmentInvite.id == invite_id
            )
            failed = EnrollmentError("expired")
        else:
            failed = None
            # Only one of two simultaneous taps on the same link can use it.
            claimed = (
                await EnrollmentInvite.update({EnrollmentInvite.used_at: utcnow()})
                .where(
                    EnrollmentInvite.id == invite_id,
                    EnrollmentInvite.used_at.is_null(),
                    EnrollmentInvite.voided_at.is_null(),
                )
                .returning(EnrollmentInvite.id)
            )
            if not claimed:
                raise EnrollmentError("expired")
            account_id = await account_for_patient(
                patient_id, f"{invite['patient.given_name']} {invite['patient.family_name']}"
            )
            token_out = await session_start(
                account_id=account_id,
                acting_patient_id=patient_id,
                lifetime=lifetime,
                ip=ip,
                user_agent=user_agent,
                reason="enrollment",
            )
    if failed is not None:
        raise failed
    return token_out


async def _claim_date_failure(invite_id: int) -> int | None:
    """Count a wrong date of birth in one statement, voiding the link at the last try, so
    dates sent at once cannot all read the same count: the failures so far, or None when
    the link was already used or voided by this one's turn."""
    now = utcnow()
    rows = await EnrollmentInvite.raw(
        """
        UPDATE enrollment_invite SET failed_attempts = failed_attempts + 1,
            voided_at = CASE WHEN failed_attempts + 1 >= {} THEN {} ELSE voided_at END
        WHERE id = {} AND used_at IS NULL AND voided_at IS NULL AND failed_attempts < {}
        RETURNING failed_attempts
        """,
        MAX_DATE_ATTEMPTS,
        now,
        invite_id,
        MAX_DATE_ATTEMPTS,
    )
    return int(rows[0]["failed_attempts"]) if rows else None


async def account_for_patient(patient_id: int, display_name: str) -> int:
    """The account holding this patient's self grant, made the first time they enroll."""
    existing = (
        await AccessGrant.select(AccessGrant.account)
        .where(
            AccessGrant.patient == patient_id,
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
        )
        .first()
    )
    if existing is not None:
        return int(existing["account"])
    account = Account(display_name=display_name)
    await Account.insert(account)
    await AccessGrant.insert(
        AccessGrant(account=account.id, patient=patient_id, kind="self", starts_at=utcnow())
    )
    await record_fact("enrolled", patient_id)
    return int(account.id)
