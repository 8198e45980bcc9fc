"""Server-side sessions (docs/security.md): random token in the cookie, its hash in the database,
idle timeout and absolute lifetime checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.access import Actor, StaffActor
from app.access.grants import ACCOUNT_GRANTS_JOIN, GRANT_COLUMNS, GRANT_ORDER, grants_live
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record, audit_staff
from app.tables import WebSession

# last_seen_at is written at most this often, so most requests stay read-only.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _session_insert(
    lifetime: timedelta, ip: str, user_agent: str, **owner: Any
) -> tuple[str, WebSession]:
    """A new session row (inside the caller's transaction) and its token: the only copy,
    since the table keeps just the hash."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = WebSession(
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=ip[:64],
        user_agent=user_agent[:300],
        **owner,
    )
    await WebSession.insert(session)
    return token, session


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
    """Create a session and return its token (the only copy: we keep just the hash)."""
    async with write_transaction():
        token, session = await _session_insert(
            lifetime,
            ip,
            user_agent,
            account=account_id,
            acting_patient=acting_patient_id,
            passkey=passkey_id,
        )
        actor = Actor(
            account_id=account_id,
            account_public_id="",
            display_name="",
            locale=None,
            session_id=session.id,
            acting_patient_id=acting_patient_id,
            ip=ip,
            user_agent=user_agent,
        )
        await audit_record(
            actor=actor, action=f"auth.sign_in.{reason}", patient_id=acting_patient_id
        )
    return token


async def _seen(session_id: int, last_seen_at: datetime, now: datetime) -> None:
    """Keep the idle clock running, writing at most once a minute per session."""
    if now - last_seen_at > LAST_SEEN_RESOLUTION:
        await WebSession.update({WebSession.last_seen_at: now}).where(WebSession.id == session_id)


async def session_actor(
    *, token: str, idle_timeout: timedelta, ip: str, user_agent: str
) -> Actor | None:
    """The signed-in account for this token, or None when unknown, ended, idle or expired."""
    now = utcnow()
    # Hand-written SQL: this runs on every request, and building the ORM join costs more
    # than running it (bench/). It also reads the account's live grants (a row each), so the
    # request's PatientContext needs no query of its own. Placeholders are bound parameters.
    rows = await WebSession.raw(
        f"""
        SELECT s.id, s.last_seen_at, s.acting_patient,
               a.id AS account_id, a.public_id AS account_public_id,
               a.display_name, a.locale, {GRANT_COLUMNS}
        FROM web_session s JOIN account a ON a.id = s.account
        {ACCOUNT_GRANTS_JOIN}
        WHERE s.token_hash = {{}} AND s.revoked_at IS NULL AND s.expires_at > {{}}
          AND s.last_seen_at > {{}} AND a.disabled_at IS NULL
        ORDER BY {GRANT_ORDER}
        """,  # noqa: S608  (only constant SQL is formatted in)
        now,
        now,
        token_hash(token),
        now,
        now - idle_timeout,
    )
    if not rows:
        return None
    row = rows[0]
    await _seen(row["id"], row["last_seen_at"], now)
    return Actor(
        account_id=row["account_id"],
        account_public_id=row["account_public_id"],
        display_name=row["display_name"],
        locale=row["locale"],
        session_id=row["id"],
        acting_patient_id=row["acting_patient"],
        ip=ip,
        user_agent=user_agent,
        grants=tuple(grants_live(rows, now)),
    )


async def session_end(*, actor: Actor) -> None:
    async with write_transaction():
        await WebSession.update({WebSession.revoked_at: utcnow()}).where(
            WebSession.id == actor.session_id
        )
        await audit_record(actor=actor, action="auth.sign_out")


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


async def sessions_end_all(*, actor: Actor) -> None:
    """Sign out everywhere, this device included."""
    async with write_transaction():
        await WebSession.update({WebSession.revoked_at: utcnow()}).where(
            WebSession.account == actor.account_id, WebSession.revoked_at.is_null()
        )
        await audit_record(actor=actor, action="auth.sign_out_everywhere")


async def staff_session_start(
    *, staff_id: int, lifetime: timedelta, ip: str, user_agent: str, reason: str
) -> str:
    """A staff member's session: the same table, its own cookie (handlers/staff.py)."""
    async with write_transaction():
        token, session = await _session_insert(lifetime, ip, user_agent, staff=staff_id)
        await audit_staff(
            staff=await _staff_actor_by_id(staff_id, session.id, ip, user_agent),
            action=f"auth.staff_sign_in.{reason}",
        )
    return token


async def _staff_actor_by_id(
    staff_id: int, session_id: int, ip: str, user_agent: str
) -> StaffActor:
    rows = await WebSession.raw(
        "SELECT id, public_id, given_name, family_name, role FROM staff_user WHERE id = {}",
        staff_id,
    )
    return _staff_actor(rows[0] | {"staff_id": staff_id, "session_id": session_id}, ip, user_agent)


def _staff_actor(row: dict[str, object], ip: str, user_agent: str) -> StaffActor:
    return StaffActor(
        staff_id=int(str(row["staff_id"])),
        public_id=str(row["public_id"]),
        given_name=str(row["given_name"]),
        family_name=str(row["family_name"]),
        role=str(row["role"]),
        session_id=int(str(row["session_id"])),
        ip=ip,
        user_agent=user_agent,
    )


async def staff_session_actor(
    *, token: str, idle_timeout: timedelta, ip: str, user_agent: str
) -> StaffActor | None:
    """The signed-in staff member for this token, or None (unknown, ended, idle, disabled)."""
    now = utcnow()
    rows = await WebSession.raw(
        """
        SELECT s.id AS session_id, s.last_seen_at, u.id AS staff_id, u.public_id,
               u.given_name, u.family_name, u.role
        FROM web_session s JOIN staff_user u ON u.id = s.staff
        WHERE s.token_hash = {} AND s.revoked_at IS NULL AND s.expires_at > {}
          AND s.last_seen_at > {} AND u.disabled_at IS NULL
        """,
        token_hash(token),
        now,
        now - idle_timeout,
    )
    if not rows:
        return None
    row = rows[0]
    await _seen(row["session_id"], row["last_seen_at"], now)
    return _staff_actor(row, ip, user_agent)


async def staff_session_end(*, staff: StaffActor) -> None:
    async with write_transaction():
        await WebSession.update({WebSession.revoked_at: utcnow()}).where(
            WebSession.id == staff.session_id
        )
        await audit_staff(staff=staff, action="auth.staff_sign_out")
