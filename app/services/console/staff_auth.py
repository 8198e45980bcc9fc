"""Clinic staff accounts: a one-time link to add a first passkey, then passkey sign-in.

`portal create-staff` makes the first administrator this way. The ceremonies and sessions are
the patients' own (passkeys.py, sessions.py) in the staff realm (identity.py), which keeps
staff passkeys, challenges and sessions apart from patients'.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.clock import utcnow
from app.db import write_transaction
from app.services.audit import audit_insert
from app.services.console.roles import ROLES
from app.services.identity import STAFF
from app.services.passkeys import (
    PasskeyError,
    PasskeyOwner,
    RelyingParty,
    passkey_creation_options,
    passkey_keep,
)
from app.services.sessions import session_open, token_hash
from app.tables import StaffInvite, StaffUser

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
                token_hash=token_hash(token),
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
        token_hash(token),
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
    """Options for the staff member's first passkey, while their link is open."""
    invite = await staff_invite_open(token)
    if invite is None:
        raise PasskeyError("link")
    owner = PasskeyOwner(invite.staff_id, invite.staff_public_id, invite.display_name)
    return await passkey_creation_options(STAFF, owner=owner, rp=rp)


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
        if invite is None:
            raise PasskeyError("link")
        await passkey_keep(
            STAFF,
            owner_id=invite.staff_id,
            rp=rp,
            handle=handle,
            credential=credential,
            device_name=device_name,
            ip=ip,
            user_agent=user_agent,
        )
        # Two tabs racing to one link: one claims it, the other rolls its passkey back.
        claimed = (
            await StaffInvite.update({StaffInvite.used_at: utcnow()})
            .where(StaffInvite.id == invite.invite_id, StaffInvite.used_at.is_null())
            .returning(StaffInvite.id)
        )
        if not claimed:
            raise PasskeyError("link")
        return await session_open(
            STAFF,
            invite.staff_id,
            lifetime=lifetime,
            ip=ip,
            user_agent=user_agent,
            reason="enrollment",
        )
