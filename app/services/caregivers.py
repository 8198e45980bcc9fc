"""Caregivers (proxies): an adult patient invites someone by phone or email with a scope and
an optional end date; clinic staff invite a minor's parent or guardian after checking the
relationship. The invitee accepts with the same passwordless flow, after entering a
one-time code sent to the phone or email the invitation went to (holding the link is not
enough: links get forwarded), and the patient (or staff) can revoke at once: the next
request resolves the context without the grant.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from app.access import Actor, PatientContext, StaffActor
from app.access.grants import SCOPE_AREAS, age_on, age_rules, live_grants
from app.clinic import clinic_profile, clinic_today
from app.clock import utcnow
from app.db import engine, write_transaction
from app.errors import NotFoundError, NotPermittedError
from app.notices import (
    send_adulthood_reached,
    send_caregiver_invite,
    send_caregiver_invite_code,
    send_guardian_access_ended,
    send_new_caregiver_notice,
)
from app.services.audit import audit_insert, audit_record, audit_staff
from app.services.phones import phone_refusal
from app.services.rate_limit import RateRule, rate_limit_allow
from app.services.sessions import session_start
from app.services.sign_in import CodeError, CodeTarget, code_confirm, code_issue, normalise_contact
from app.settings import get_settings
from app.tables import AccessGrant, Account, CaregiverInvite, Patient

INVITE_LIFETIME = timedelta(days=7)
# Attempts to invite, per account, in the shared rate limiter: a flood of form posts stops
# here before it costs the database anything. The caps on what is sent (open and daily,
# settings.py) are counted in the database.
INVITE_ATTEMPTS_PER_ACCOUNT = RateRule("caregiver_invite_account", 40, timedelta(hours=1))
SCOPES = tuple(SCOPE_AREAS)
PATIENT_RELATIONSHIPS = ("spouse", "child", "parent", "sibling", "friend", "other")
GUARDIAN_RELATIONSHIPS = ("parent", "guardian")


class InviteError(Exception):
    """`contact`, `country` (a number the clinic does not text), `phone_type` (not a mobile
    number), `scope`, `relationship`, `end_date`, `adult_only`, `minor_only`, `own_record`,
    `name`, `limit_open` (too many waiting), `limit_daily` (too many today), `limit_attempts`
    (too many tries this hour); accepting: `code_wrong`, `code_expired`, `code_limit` (too
    many codes asked for)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CaregiverLine:
    grant_public_id: str
    name: str
    relationship: str | None
    scope: str
    since: datetime
    until: datetime | None
    by_staff: bool


@dataclass(frozen=True)
class PendingInvite:
    public_id: str
    contact: str
    relationship: str
    scope: str
    created_at: datetime


@dataclass(frozen=True)
class OpenInvite:
    id: int
    patient_id: int
    patient_first_name: str
    relationship: str
    scope: str
    channel: str
    contact: str
    grant_expires_at: datetime | None
    invited_by_staff: bool

    @property
    def contact_hint(self) -> str:
        """Where the code goes, shown only in part to whoever holds the link."""
        if self.channel == "sms":
            return f"••• {self.contact[-2:]}"
        local, _, domain = self.contact.partition("@")
        return f"{local[:1]}•••@{domain}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_of_day(day: date) -> datetime:
    """The grant lasts through the chosen day, in the clinic's time zone."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=clinic_profile().timezone)


def invite_contact(contact: str) -> tuple[str, str]:
    """("sms", "+1...") or ("email", "..."): a contact the clinic may write to. Texts go
    only to valid mobile numbers in the countries the clinic serves (see phones.py)."""
    parsed = normalise_contact(contact)
    if parsed is None:
        raise InviteError("contact")
    channel, value = parsed
    refusal = phone_refusal(value, get_settings().sms_countries) if channel == "sms" else None
    if refusal:
        raise InviteError(refusal)
    return channel, value


async def _create_invite(
    *,
    patient_id: int,
    channel: str,
    value: str,
    relationship: str,
    scope: str,
    grant_expires_at: datetime | None,
    base_url: str,
    account_id: int | None = None,
    staff_id: int | None = None,
) -> str:
    """Inside the caller's transaction: void older invitations to the same contact for this
    patient, store the new one and queue the message. Returns the invitation's public id."""
    token = secrets.token_urlsafe(24)
    now = utcnow()
    await CaregiverInvite.update({CaregiverInvite.voided_at: now}).where(
        CaregiverInvite.patient == patient_id,
        CaregiverInvite.contact == value,
        CaregiverInvite.used_at.is_null(),
        CaregiverInvite.voided_at.is_null(),
    )
    invite = CaregiverInvite(
        patient=patient_id,
        invited_by_account=account_id,
        invited_by_staff=staff_id,
        channel=channel,
        contact=value,
        relationship=relationship,
        scope=scope,
        grant_expires_at=grant_expires_at,
        token_hash=_hash(token),
        created_at=now,
        expires_at=now + INVITE_LIFETIME,
    )
    await CaregiverInvite.insert(invite)
    await send_caregiver_invite(to=(channel, value), link=f"{base_url}/care/{token}")
    return str(invite.public_id)


async def _invite_caps_check(account_id: int, contact: str) -> None:
    """Inside the caller's transaction, before anything is written: refuse when this
    account has too many invitations waiting, or has sent too many in the last day
    (cancelled ones count: cancelling and sending again is still sending)."""
    settings = get_settings()
    if engine().engine_type != "sqlite":  # SQLite's write transactions already queue
        # Two invitations sent at once must not both slip under the caps.
        await Account.raw("SELECT id FROM account WHERE id = {} FOR UPDATE", account_id)
    now = utcnow()
    sent_today = await CaregiverInvite.count().where(
        CaregiverInvite.invited_by_account == account_id,
        CaregiverInvite.created_at > now - timedelta(days=1),
    )
    if sent_today >= settings.caregiver_invites_per_day:
        raise InviteError("limit_daily")
    waiting = await CaregiverInvite.count().where(
        CaregiverInvite.invited_by_account == account_id,
        CaregiverInvite.used_at.is_null(),
        CaregiverInvite.voided_at.is_null(),
        CaregiverInvite.expires_at > now,
        # A new invitation to the same contact replaces the waiting one.
        CaregiverInvite.contact != contact,
    )
    if waiting >= settings.caregiver_invites_open:
        raise InviteError("limit_open")


async def caregiver_invite(
    *,
    context: PatientContext,
    contact: str,
    relationship: str,
    scope: str,
    end_date: date | None,
    base_url: str,
) -> str:
    """An adult patient invites a caregiver for their own record."""
    if not context.is_self:
        raise NotPermittedError("sharing")
    if context.patient.age_on(clinic_today()) < age_rules().adult:
        raise InviteError("adult_only")
    if scope not in SCOPES:
        raise InviteError("scope")
    if relationship not in PATIENT_RELATIONSHIPS:
        raise InviteError("relationship")
    if end_date is not None and end_date < clinic_today():
        raise InviteError("end_date")
    if not await rate_limit_allow(INVITE_ATTEMPTS_PER_ACCOUNT, context.actor.account_public_id):
        raise InviteError("limit_attempts")
    channel, value = invite_contact(contact)
    async with write_transaction():
        await _invite_caps_check(context.actor.account_id, value)
        public_id = await _create_invite(
            patient_id=context.patient.id,
            channel=channel,
            value=value,
            relationship=relationship,
            scope=scope,
            grant_expires_at=end_of_day(end_date) if end_date else None,
            base_url=base_url,
            account_id=context.actor.account_id,
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="sharing.invite",
            resource_type="CaregiverInvite",
            resource_id=public_id,
        )
    return public_id


async def guardian_invite(
    *, staff: StaffActor, patient_public_id: str, contact: str, relationship: str, base_url: str
) -> str:
    """Staff, having checked the relationship, invite a minor's parent or guardian (full
    access; docs/security.md's age rules narrow it from 12 and end it at 18)."""
    if relationship not in GUARDIAN_RELATIONSHIPS:
        raise InviteError("relationship")
    channel, value = invite_contact(contact)
    async with write_transaction():
        patient = (
            await Patient.select(Patient.id, Patient.birth_date)
            .where(Patient.public_id == patient_public_id)
            .first()
        )
        if patient is None:
            raise NotFoundError(patient_public_id)
        if age_on(patient["birth_date"], clinic_today()) >= age_rules().adult:
            raise InviteError("minor_only")
        public_id = await _create_invite(
            patient_id=patient["id"],
            channel=channel,
            value=value,
            relationship=relationship,
            scope="full",
            grant_expires_at=None,
            base_url=base_url,
            staff_id=staff.staff_id,
        )
        await audit_staff(
            staff=staff,
            action="sharing.guardian_invite",
            patient_id=patient["id"],
            resource_type="CaregiverInvite",
            resource_id=public_id,
        )
    return public_id


async def caregivers_for(patient_id: int) -> tuple[list[CaregiverLine], list[PendingInvite]]:
    """Who can act for this patient now (the live grants selector), and who has been
    invited."""
    now = utcnow()
    grants = sorted(
        await live_grants(patient_id=patient_id, kind="proxy"), key=lambda g: (g.starts_at, g.id)
    )
    invites = await (
        CaregiverInvite.select(
            CaregiverInvite.public_id,
            CaregiverInvite.contact,
            CaregiverInvite.relationship,
            CaregiverInvite.scope,
            CaregiverInvite.created_at,
        )
        .where(
            CaregiverInvite.patient == patient_id,
            CaregiverInvite.used_at.is_null(),
            CaregiverInvite.voided_at.is_null(),
            CaregiverInvite.expires_at > now,
        )
        .order_by(CaregiverInvite.created_at)
    )
    return (
        [
            CaregiverLine(
                grant_public_id=grant.public_id,
                name=grant.account_name,
                relationship=grant.relationship,
                scope=grant.scope,
                since=grant.starts_at,
                until=grant.expires_at,
                by_staff=grant.granted_by_staff is not None,
            )
            for grant in grants
        ],
        [PendingInvite(**row) for row in invites],
    )


async def caregivers_list(
    context: PatientContext,
) -> tuple[list[CaregiverLine], list[PendingInvite]]:
    if not context.is_self:
        raise NotPermittedError("sharing")
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="sharing.view")
    return await caregivers_for(context.patient.id)


async def _revoke(grant_public_id: str, patient_id: int | None, values: dict[Any, Any]) -> int:
    """Inside the caller's transaction. Returns the grant's patient id."""
    query = AccessGrant.update(values).where(
        AccessGrant.public_id == grant_public_id,
        AccessGrant.kind == "proxy",
        AccessGrant.revoked_at.is_null(),
    )
    if patient_id is not None:
        query = query.where(AccessGrant.patient == patient_id)
    revoked = await query.returning(AccessGrant.patient)
    if not revoked:
        raise NotFoundError(grant_public_id)
    return int(revoked[0]["patient"])


async def grant_revoke(*, context: PatientContext, grant_public_id: str) -> None:
    """The patient ends a caregiver's access; it stops on the caregiver's next request."""
    if not context.is_self:
        raise NotPermittedError("sharing")
    async with write_transaction():
        await _revoke(
            grant_public_id,
            context.patient.id,
            {
                AccessGrant.revoked_at: utcnow(),
                AccessGrant.revoked_reason: "patient",
                AccessGrant.revoked_by_account: context.actor.account_id,
            },
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="sharing.revoke",
            resource_type="AccessGrant",
            resource_id=grant_public_id,
        )


async def staff_grant_revoke(*, staff: StaffActor, grant_public_id: str) -> str:
    """Staff end a caregiver's access; returns the patient's public id."""
    async with write_transaction():
        patient_id = await _revoke(
            grant_public_id,
            None,
            {
                AccessGrant.revoked_at: utcnow(),
                AccessGrant.revoked_reason: "staff",
                AccessGrant.revoked_by_staff: staff.staff_id,
            },
        )
        await audit_staff(
            staff=staff,
            action="sharing.revoke",
            patient_id=patient_id,
            resource_type="AccessGrant",
            resource_id=grant_public_id,
        )
        patient = await Patient.select(Patient.public_id).where(Patient.id == patient_id).first()
    assert patient is not None
    return str(patient["public_id"])


async def invite_cancel(*, context: PatientContext, invite_public_id: str) -> None:
    if not context.is_self:
        raise NotPermittedError("sharing")
    async with write_transaction():
        voided = (
            await CaregiverInvite.update({CaregiverInvite.voided_at: utcnow()})
            .where(
                CaregiverInvite.public_id == invite_public_id,
                CaregiverInvite.patient == context.patient.id,
                CaregiverInvite.used_at.is_null(),
                CaregiverInvite.voided_at.is_null(),
            )
            .returning(CaregiverInvite.id)
        )
        if not voided:
            raise NotFoundError(invite_public_id)
        await audit_record(
            actor=context.actor,
            context=context,
            action="sharing.invite_cancel",
            resource_type="CaregiverInvite",
            resource_id=invite_public_id,
        )


async def invite_open(token: str) -> OpenInvite | None:
    rows = await CaregiverInvite.raw(
        """
        SELECT i.id, i.patient, i.relationship, i.scope, i.channel, i.contact,
               i.grant_expires_at, i.invited_by_staff, p.given_name, p.preferred_name
        FROM caregiver_invite i JOIN patient p ON p.id = i.patient
        WHERE i.token_hash = {} AND i.used_at IS NULL AND i.voided_at IS NULL
          AND i.expires_at > {}
        """,
        _hash(token),
        utcnow(),
    )
    if not rows:
        return None
    row = rows[0]
    return OpenInvite(
        id=row["id"],
        patient_id=row["patient"],
        # Before acceptance the link shows a first name only: it may have been forwarded.
        patient_first_name=row["preferred_name"] or row["given_name"],
        relationship=row["relationship"],
        scope=row["scope"],
        channel=row["channel"],
        contact=row["contact"],
        grant_expires_at=row["grant_expires_at"],
        invited_by_staff=row["invited_by_staff"] is not None,
    )


async def invite_code_send(*, token: str, secret: str, ip: str, user_agent: str) -> str:
    """Send a one-time code to the contact the invitation went to (the sign-in codes' limits
    apply); returns the browser's handle for it. Whoever accepts must show they hold that
    phone or email, not just the link."""
    invite = await invite_open(token)
    if invite is None:
        raise NotFoundError("invite")

    async def nobody() -> CodeTarget:
        return CodeTarget()  # the code proves the contact; it signs no one in

    async def send(code: str) -> None:
        await send_caregiver_invite_code(to=(invite.channel, invite.contact), code=code)

    try:
        return await code_issue(
            channel=invite.channel,
            value=invite.contact,
            find=nobody,
            secret=secret,
            ip=ip,
            user_agent=user_agent,
            proof_of_contact=send,
        )
    except CodeError as error:
        raise InviteError("code_limit") from error


async def invite_accept(
    *,
    token: str,
    actor: Actor | None,
    display_name: str,
    code_handle: str,
    code: str,
    secret: str,
    lifetime: timedelta,
    ip: str,
    user_agent: str,
) -> str | None:
    """Accept an invitation with the code sent to its contact: as the signed-in account, or
    as a new account named `display_name` (then a session token is returned for it). The
    grant starts now."""
    invite = await invite_open(token)
    if invite is None:
        raise NotFoundError("invite")
    if actor is None and not " ".join(display_name.split()):
        raise InviteError("name")  # before the code is used up
    try:
        await code_confirm(
            handle=code_handle,
            code=code,
            secret=secret,
            contact=invite.contact,
            ip=ip,
            user_agent=user_agent,
        )
    except CodeError as error:
        raise InviteError(f"code_{error.reason}") from error
    async with write_transaction():
        invite = await invite_open(token)
        if invite is None:
            raise NotFoundError("invite")
        claimed = (
            await CaregiverInvite.update({CaregiverInvite.used_at: utcnow()})
            .where(CaregiverInvite.id == invite.id, CaregiverInvite.used_at.is_null())
            .returning(CaregiverInvite.id)
        )
        if not claimed:
            raise NotFoundError("invite")
        if actor is not None:
            account_id = actor.account_id
            own = await AccessGrant.exists().where(
                AccessGrant.account == account_id,
                AccessGrant.patient == invite.patient_id,
                AccessGrant.kind == "self",
                AccessGrant.revoked_at.is_null(),
            )
            if own:
                raise InviteError("own_record")
            # The new invitation replaces whatever access they had (ended, narrower or not).
            await AccessGrant.update(
                {AccessGrant.revoked_at: utcnow(), AccessGrant.revoked_reason: "replaced"}
            ).where(
                AccessGrant.account == account_id,
                AccessGrant.patient == invite.patient_id,
                AccessGrant.kind == "proxy",
                AccessGrant.revoked_at.is_null(),
            )
        else:
            name = " ".join(display_name.split())[:200]
            if not name:
                raise InviteError("name")
            account = Account(
                display_name=name,
                phone=invite.contact if invite.channel == "sms" else None,
                email=invite.contact if invite.channel == "email" else None,
            )
            await Account.insert(account)
            account_id = int(account.id)
        await CaregiverInvite.update({CaregiverInvite.accepted_by_account: account_id}).where(
            CaregiverInvite.id == invite.id
        )
        inviter = (
            await CaregiverInvite.select(
                CaregiverInvite.invited_by_account, CaregiverInvite.invited_by_staff
            )
            .where(CaregiverInvite.id == invite.id)
            .first()
        )
        assert inviter is not None
        grant = AccessGrant(
            account=account_id,
            patient=invite.patient_id,
            kind="proxy",
            relationship=invite.relationship,
            scope=invite.scope,
            granted_by_account=inviter["invited_by_account"],
            granted_by_staff=inviter["invited_by_staff"],
            starts_at=utcnow(),
            expires_at=invite.grant_expires_at,
        )
        await AccessGrant.insert(grant)
        if inviter["invited_by_account"] is not None:
            # So access no one meant to give does not go unnoticed.
            await send_new_caregiver_notice(
                patient_id=invite.patient_id, grant_public_id=str(grant.public_id)
            )
        session_token: str | None = None
        if actor is None:
            session_token = await session_start(
                account_id=account_id,
                acting_patient_id=invite.patient_id,
                lifetime=lifetime,
                ip=ip,
                user_agent=user_agent,
                reason="caregiver_invite",
            )
        accepting = actor or Actor(
            account_id=account_id,
            account_public_id="",
            display_name="",
            locale=None,
            session_id=0,
            acting_patient_id=invite.patient_id,
            ip=ip,
            user_agent=user_agent,
        )
        await audit_record(
            actor=accepting,
            patient_id=invite.patient_id,
            action="sharing.accept",
            resource_type="AccessGrant",
            resource_id=grant.public_id,
        )
    return session_token


def _adult_on_or_before(today: date, adult: int) -> date:
    """The latest birth date of someone who is an adult today (29 February counts as
    28 February in the years that lack it)."""
    try:
        return today.replace(year=today.year - adult)
    except ValueError:
        return date(today.year - adult, 2, 28)


async def guardian_grants_end_at_adulthood() -> int:
    """End the staff-given guardian grants of patients who have come of age, and tell both.

    Access already stops at that birthday (the grants selector's `Grant.ended_by_age`); this
    makes it final and sends the notices. Safe to run from several workers: each grant ends once."""
    cutoff = _adult_on_or_before(clinic_today(), age_rules().adult)
    now = utcnow()
    async with write_transaction():
        ended = await AccessGrant.raw(
            """
            UPDATE access_grant SET revoked_at = {}, revoked_reason = 'adulthood'
            WHERE kind = 'proxy' AND relationship IN ('parent', 'guardian')
              AND granted_by_account IS NULL AND revoked_at IS NULL
              AND patient IN (SELECT id FROM patient WHERE birth_date <= {})
            RETURNING public_id, account, patient
            """,
            now,
            cutoff,
        )
        for grant in ended:
            await send_guardian_access_ended(
                account_id=grant["account"], grant_public_id=str(grant["public_id"])
            )
            await send_adulthood_reached(
                patient_id=grant["patient"], grant_public_id=str(grant["public_id"])
            )
            await audit_insert(
                action="sharing.ended_at_adulthood",
                patient=grant["patient"],
                resource_type="AccessGrant",
                resource_id=grant["public_id"],
            )
    return len(ended)
