"""Clinic staff accounts: a one-time link to add a first passkey, then passkey sign-in.

`portal create-staff` makes the first administrator this way. Staff passkeys and challenges
are kept apart from patients' (their own table and ceremony purposes).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from webauthn import (
    generate_registration_options,
    options_to_json,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.clock import utcnow
from app.db import write_transaction
from app.services.audit import audit_anonymous, audit_insert
from app.services.console.roles import ROLES
from app.services.passkeys import (
    PasskeyError,
    RelyingParty,
    assertion_check,
    challenge_store,
    challenge_take,
    credential_id_unused,
    passkey_authentication_options,
    registration_check,
)
from app.services.sessions import staff_session_start
from app.tables import StaffInvite, StaffPasskey, StaffUser

# Long enough to reach a desk computer, short enough that a leaked link soon stops working.
STAFF_LINK_LIFETIME = timedelta(hours=24)


class StaffError(Exception):
    """Creating a staff member failed: `role`, `exists` or `unknown`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StaffLink:
    staff_public_id: str
    display_name: str
    link: str


@dataclass(frozen=True)
class OpenStaffInvite:
    invite_id: int
    staff_id: int
    staff_public_id: str
    display_name: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def staff_create(
    *,
    email: str,
    given_name: str,
    family_name: str,
    role: str,
    base_url: str,
    new_link: bool = False,
) -> StaffLink:
    """Add a staff member (or, with new_link, re-issue a link to an existing one, voiding
    the old) and return their one-time sign-up link."""
    if role not in ROLES:
        raise StaffError("role")
    email = email.strip().lower()
    token = secrets.token_urlsafe(24)
    now = utcnow()
    async with write_transaction():
        existing = (
            await StaffUser.select(
                StaffUser.id, StaffUser.public_id, StaffUser.given_name, StaffUser.family_name
            )
            .where(StaffUser.email == email)
            .first()
        )
        if existing is not None and not new_link:
            raise StaffError("exists")
        if existing is None and new_link:
            raise StaffError("unknown")
        if existing is None:
            staff = StaffUser(
                given_name=given_name.strip(),
                family_name=family_name.strip(),
                email=email,
                role=role,
            )
            await StaffUser.insert(staff)
            staff_id, public_id = int(staff.id), str(staff.public_id)
            name = f"{staff.given_name} {staff.family_name}"
        else:
            staff_id, public_id = int(existing["id"]), str(existing["public_id"])
            name = f"{existing['given_name']} {existing['family_name']}"
        await StaffInvite.update({StaffInvite.used_at: now}).where(
            StaffInvite.staff == staff_id, StaffInvite.used_at.is_null()
        )
        await StaffInvite.insert(
            StaffInvite(
                staff=staff_id,
                token_hash=_hash(token),
                created_at=now,
                expires_at=now + STAFF_LINK_LIFETIME,
            )
        )
        await audit_insert(
            occurred_at=now,
            actor_staff=staff_id,
            action="auth.staff_link_issued",
            resource_type="StaffUser",
            resource_id=public_id,
        )
    return StaffLink(public_id, name, f"{base_url}/staff/enroll/{token}")


async def staff_invite_open(token: str) -> OpenStaffInvite | None:
    rows = await StaffInvite.raw(
        """
        SELECT i.id, u.id AS staff_id, u.public_id, u.given_name, u.family_name
        FROM staff_invite i JOIN staff_user u ON u.id = i.staff
        WHERE i.token_hash = {} AND i.used_at IS NULL AND i.expires_at > {}
          AND u.disabled_at IS NULL
        """,
        _hash(token),
        utcnow(),
    )
    if not rows:
        return None
    row = rows[0]
    return OpenStaffInvite(
        invite_id=row["id"],
        staff_id=row["staff_id"],
        staff_public_id=row["public_id"],
        display_name=f"{row['given_name']} {row['family_name']}",
    )


async def staff_registration_options(*, token: str, rp: RelyingParty) -> tuple[str, str]:
    invite = await staff_invite_open(token)
    if invite is None:
        raise PasskeyError("link")
    existing = await StaffPasskey.select(StaffPasskey.credential_id).where(
        StaffPasskey.staff == invite.staff_id
    )
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        # Never the same user handle as a patient account: a person can be both.
        user_id=f"staff:{invite.staff_public_id}".encode(),
        user_name=invite.display_name,
        user_display_name=invite.display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(row["credential_id"]))
            for row in existing
        ],
    )
    handle = await challenge_store("staff_register", options.challenge, staff_id=invite.staff_id)
    return options_to_json(options), handle


async def staff_enroll(
    *,
    token: str,
    rp: RelyingParty,
    handle: str,
    credential: dict[str, Any],
    device_name: str,
    lifetime: timedelta,
    ip: str,
    user_agent: str,
) -> str:
    """Keep the new passkey, use up the link and sign the staff member in."""
    async with write_transaction():
        invite = await staff_invite_open(token)
        taken = await challenge_take(handle, "staff_register")
        if invite is None or taken.staff_id != invite.staff_id:
            raise PasskeyError("link")
        verified = registration_check(rp=rp, challenge=taken.challenge, credential=credential)
        await credential_id_unused(verified.credential_id)
        claimed = (
            await StaffInvite.update({StaffInvite.used_at: utcnow()})
            .where(StaffInvite.id == invite.invite_id, StaffInvite.used_at.is_null())
            .returning(StaffInvite.id)
        )
        if not claimed:
            raise PasskeyError("link")
        passkey = StaffPasskey(
            staff=invite.staff_id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            name=device_name[:80],
        )
        await StaffPasskey.insert(passkey)
        await audit_insert(
            occurred_at=utcnow(),
            actor_staff=invite.staff_id,
            action="auth.staff_passkey_added",
            resource_type="Passkey",
            resource_id=passkey.public_id,
            ip=ip,
            user_agent=user_agent,
        )
        return await staff_session_start(
            staff_id=invite.staff_id,
            lifetime=lifetime,
            ip=ip,
            user_agent=user_agent,
            reason="enrollment",
        )


async def staff_authentication_options(*, rp: RelyingParty) -> tuple[str, str]:
    return await passkey_authentication_options(rp=rp, purpose="staff_authenticate")


async def staff_sign_in(
    *,
    rp: RelyingParty,
    handle: str,
    credential: dict[str, Any],
    lifetime: timedelta,
    ip: str,
    user_agent: str,
) -> str:
    """Check a staff passkey's assertion and start a staff session."""
    async with write_transaction():
        try:
            passkey_id, staff_id, sign_count = await _verify(rp, handle, credential)
        except PasskeyError as error:
            await audit_anonymous(action="auth.staff_sign_in_failed", ip=ip, user_agent=user_agent)
            failed: PasskeyError | None = error
        else:
            failed = None
            await StaffPasskey.update(
                {StaffPasskey.sign_count: sign_count, StaffPasskey.last_used_at: utcnow()}
            ).where(StaffPasskey.id == passkey_id)
            token = await staff_session_start(
                staff_id=staff_id, lifetime=lifetime, ip=ip, user_agent=user_agent, reason="passkey"
            )
    if failed is not None:
        raise failed
    return token


async def _verify(
    rp: RelyingParty, handle: str, credential: dict[str, Any]
) -> tuple[int, int, int]:
    challenge = (await challenge_take(handle, "staff_authenticate")).challenge
    rows = await StaffPasskey.raw(
        """
        SELECT p.id, p.staff, p.public_key, p.sign_count
        FROM staff_passkey p JOIN staff_user u ON u.id = p.staff
        WHERE p.credential_id = {} AND u.disabled_at IS NULL
        """,
        str(credential.get("id", "")),
    )
    if not rows:
        raise PasskeyError("unknown credential")
    passkey = rows[0]
    sign_count = assertion_check(
        rp=rp,
        challenge=challenge,
        credential=credential,
        public_key=passkey["public_key"],
        sign_count=passkey["sign_count"],
    )
    return passkey["id"], passkey["staff"], sign_count
