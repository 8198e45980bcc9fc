"""Server-side sessions (docs/security.md): random token in the cookie, its hash in the database,
idle timeout and absolute lifetime checked on every request. One path for patients and staff:
the realm (identity.py) says whose session it is, with which idle time and audit column."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.access import Actor
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError, NotPermittedError
from app.services.audit import audit_record
from app.services.facts import record_fact
from app.services.identity import PATIENTS, STAFF, P, Realm
from app.tables import WebSession

# last_seen_at is written at most this often, so most requests stay read-only.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def session_open(
    realm: Realm[P],
    owner_id: int,
    *,
    lifetime: timedelta,
    ip: str,
    user_agent: str,
    reason: str,
    acting_patient_id: int | None = None,
    passkey_id: int | None = None,
) -> str:
    """Create a session for a patient account or staff member, audited as its sign-in, and
    return its token: the only copy, since the table keeps just the hash."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with write_transaction():
        # Every way in (passkey, code, link, invitation, demo) ends here: a disabled owner gets
        # no session, and no audit row saying they signed in.
        disabled = await WebSession.raw(
            f"SELECT 1 FROM {realm.owners} WHERE id = {{}} AND disabled_at IS NOT NULL",  # noqa: S608  (a constant table name)
            owner_id,
        )
        if disabled:
            raise NotPermittedError("this account is disabled")
        await WebSession.insert(
            WebSession(
                token_hash=token_hash(token),
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime,
                ip=ip[:64],
                user_agent=user_agent[:300],
                acting_patient=acting_patient_id,
                passkey=passkey_id if realm.sessions_keep_passkey else None,
                **realm.owned_by(owner_id),
            )
        )
        if realm is PATIENTS and acting_patient_id is not None:
            await record_fact("signed_in", acting_patient_id, occurred_at=now, channel=reason)
        await realm.audit(
            owner_id,
            f"sign_in.{reason}",
            ip=ip,
            user_agent=user_agent,
            patient_id=acting_patient_id,
        )
    return token


async def session_start(
    *,
    account_id: int,
    acting_patient_id: int | None,
    lifetime: timedelta,
    ip: str,
    user_agent: str,
    reason: str,
    passkey_id: int | None = None,
) -> str:
    """A patient account's session, looking at this profile."""
    return await session_open(
        PATIENTS,
        account_id,
        lifetime=lifetime,
        ip=ip,
        user_agent=user_agent,
        reason=reason,
        acting_patient_id=acting_patient_id,
        passkey_id=passkey_id,
    )


async def staff_session_start(
    *, staff_id: int, lifetime: timedelta, ip: str, user_agent: str, reason: str
) -> str:
    """A staff member's session: the same table, its own cookie and idle time."""
    return await session_open(
        STAFF, staff_id, lifetime=lifetime, ip=ip, user_agent=user_agent, reason=reason
    )


async def _seen(session_id: int, last_seen_at: datetime, now: datetime) -> None:
    """Keep the idle clock running, writing at most once a minute per session."""
    if now - last_seen_at > LAST_SEEN_RESOLUTION:
        await WebSession.update({WebSession.last_seen_at: now}).where(WebSession.id == session_id)


async def session_principal(realm: Realm[P], *, token: str, ip: str, user_agent: str) -> P | None:
    """Who is signed in with this token, or None when unknown, ended, idle (the realm's idle
    time), past its lifetime, or disabled."""
    now = utcnow()
    # Hand-written SQL: this runs on every request, and building the ORM join costs more
    # than running it (bench/). For patients it also reads the account's live grants (a row
    # each). Placeholders are bound parameters.
    rows = await WebSession.raw(
        f"""
        SELECT s.id AS session_id, s.last_seen_at, s.acting_patient,
               a.id AS owner_id, a.public_id AS owner_public_id, {realm.session_columns}
        FROM web_session s JOIN {realm.owners} a ON a.id = s.{realm.owner}
        {realm.session_joins}
        WHERE s.token_hash = {{}} AND s.revoked_at IS NULL AND s.expires_at > {{}}
          AND s.last_seen_at > {{}} AND a.disabled_at IS NULL
        {realm.session_order}
        """,  # noqa: S608  (only constant SQL is formatted in)
        *realm.session_join_values(now),
        token_hash(token),
        now,
        now - realm.idle_timeout(),
    )
    if not rows:
        return None
    await _seen(rows[0]["session_id"], rows[0]["last_seen_at"], now)
    return realm.principal(rows, now, ip, user_agent)


async def session_end(realm: Realm[P], *, principal: P) -> None:
    """Sign out this device."""
    async with write_transaction():
        await WebSession.update({WebSession.revoked_at: utcnow()}).where(
            WebSession.id == principal.session_id
        )
        await realm.audit(
            realm.owner_of(principal), "sign_out", ip=principal.ip, user_agent=principal.user_agent
        )


async def sessions_end_all(realm: Realm[P], *, principal: P) -> None:
    """Sign out everywhere, this device included."""
    owner_id = realm.owner_of(principal)
    async with write_transaction():
        await WebSession.update({WebSession.revoked_at: utcnow()}).where(
            getattr(WebSession, realm.owner) == owner_id, WebSession.revoked_at.is_null()
        )
        await realm.audit(
            owner_id, "sign_out_everywhere", ip=principal.ip, user_agent=principal.user_agent
        )


@dataclass(frozen=True)
class DeviceLine:
    public_id: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    is_this_device: bool


async def sessions_list(*, actor: Actor, idle_timeout: timedelta) -> list[DeviceLine]:
    """The account's live sessions: where it is signed in right now."""
    now = utcnow()
    rows = await (
        WebSession.select(
            WebSession.id,
            WebSession.public_id,
            WebSession.user_agent,
            WebSession.created_at,
            WebSession.last_seen_at,
        )
        .where(
            WebSession.account == actor.account_id,
            WebSession.revoked_at.is_null(),
            WebSession.expires_at > now,
            WebSession.last_seen_at > now - idle_timeout,
        )
        .order_by(WebSession.last_seen_at, ascending=False)
    )
    return [
        DeviceLine(
            public_id=row["public_id"],
            user_agent=row["user_agent"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            is_this_device=row["id"] == actor.session_id,
        )
        for row in rows
    ]


async def session_end_device(*, actor: Actor, public_id: str) -> None:
    """Sign out one of the account's devices (another account's id is simply not found)."""
    async with write_transaction():
        ended = (
            await WebSession.update({WebSession.revoked_at: utcnow()})
            .where(
                WebSession.account == actor.account_id,
                WebSession.public_id == public_id,
                WebSession.revoked_at.is_null(),
            )
            .returning(WebSession.id)
        )
        if not ended:
            raise NotFoundError(public_id)
        await audit_record(actor=actor, action="auth.sign_out_device", resource_type="Session")
