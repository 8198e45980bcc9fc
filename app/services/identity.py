"""Who signs in: a patient's account or a clinic staff member, each described once (a Realm).

Passkey ceremonies (passkeys.py) and sessions (sessions.py) run one path for both; the realm
says what differs. The two stay apart (docs/security.md): their own passkey table, challenge
purposes, session cookie, idle time and audit column, so a passkey, challenge or session of
one never serves the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from webauthn.helpers.structs import UserVerificationRequirement

from app.access import Actor, StaffActor
from app.access.grants import ACCOUNT_GRANTS_JOIN, GRANT_COLUMNS, GRANT_ORDER, grants_live
from app.notices import send_new_passkey_announcement
from app.services.audit import audit_insert
from app.settings import Settings, get_settings
from app.tables import Passkey, StaffPasskey


class Principal(Protocol):
    """Someone signed in on this request (an Actor or a StaffActor)."""

    @property
    def session_id(self) -> int: ...

    @property
    def ip(self) -> str: ...

    @property
    def user_agent(self) -> str: ...


P = TypeVar("P", bound=Principal)


def _no_values(now: datetime) -> tuple[datetime, ...]:
    return ()


@dataclass(frozen=True)
class Realm(Generic[P]):
    """Who signs in, and everything about it that differs between patients and staff."""

    # Prefixes the ceremony purposes ("staff_register") and audit actions
    # ("auth.staff_sign_in.passkey"), spelt as they always were: the audit chain keeps them.
    prefix: str
    # The table of who signs in, and the column that names them on web_session,
    # webauthn_challenge, the passkey table and (as actor_<owner>) audit_event.
    owners: str
    owner: str
    passkeys: type[Passkey] | type[StaffPasskey]
    # The session cookie's base name (handlers/support.py adds `__Host-` on HTTPS).
    cookie: str
    idle_minutes: Callable[[Settings], int]
    user_verification: UserVerificationRequirement
    # The WebAuthn user handle for an owner's public id: never the same for a patient and a
    # staff member, since one person can be both.
    user_handle: Callable[[str], bytes]
    # The session lookup adds these columns of the owner `a` (and its joins, their values and
    # an order), then builds who is signed in from the rows.
    session_columns: str
    principal: Callable[[list[dict[str, Any]], datetime, str, str], P]
    owner_of: Callable[[P], int]
    session_joins: str = ""
    session_join_values: Callable[[datetime], tuple[datetime, ...]] = _no_values
    session_order: str = ""
    # Sessions remember the passkey that opened them, so removing it can end them.
    sessions_keep_passkey: bool = False
    # Tells the owner a passkey was added (inside the caller's transaction).
    announce: Callable[[int], Awaitable[None]] | None = None

    def purpose(self, ceremony: str) -> str:
        return f"{self.prefix}{ceremony}"

    def action(self, event: str) -> str:
        return f"auth.{self.prefix}{event}"

    def owned_by(self, owner_id: int | None) -> dict[str, Any]:
        """The owner column's value for a new row (a session, challenge or passkey)."""
        return {self.owner: owner_id}

    def idle_timeout(self) -> timedelta:
        return timedelta(minutes=self.idle_minutes(get_settings()))

    @property
    def verifies_user(self) -> bool:
        return self.user_verification == UserVerificationRequirement.REQUIRED

    async def audit(
        self,
        owner_id: int | None,
        event: str,
        *,
        ip: str,
        user_agent: str,
        patient_id: int | None = None,
        resource_type: str = "",
        resource_id: str = "",
    ) -> None:
        """An authentication event, by the owner (None: nobody signed in, a failed try)."""
        await audit_insert(
            action=self.action(event),
            actor_account=owner_id if self.owner == "account" else None,
            actor_staff=owner_id if self.owner == "staff" else None,
            patient=patient_id,
            resource_type=resource_type,
            resource_id=resource_id,
            ip=ip,
            user_agent=user_agent,
        )


async def _announce_new_passkey(account_id: int) -> None:
    """Tell the person on every channel on file, so a passkey added by someone else (after
    a stolen code, say) does not go unnoticed. Inside the caller's transaction."""
    await send_new_passkey_announcement(account_id=account_id)


def _patient(rows: list[dict[str, Any]], now: datetime, ip: str, user_agent: str) -> Actor:
    row = rows[0]
    return Actor(
        account_id=row["owner_id"],
        account_public_id=row["owner_public_id"],
        display_name=row["display_name"],
        locale=row["locale"],
        session_id=row["session_id"],
        acting_patient_id=row["acting_patient"],
        ip=ip,
        user_agent=user_agent,
        # The account's live grants came in the same query (a row each), so the request's
        # PatientContext needs no query of its own.
        grants=tuple(grants_live(rows, now)),
    )


def _staff(rows: list[dict[str, Any]], now: datetime, ip: str, user_agent: str) -> StaffActor:
    row = rows[0]
    return StaffActor(
        staff_id=row["owner_id"],
        public_id=str(row["owner_public_id"]),
        given_name=row["given_name"],
        family_name=row["family_name"],
        role=row["role"],
        session_id=row["session_id"],
        ip=ip,
        user_agent=user_agent,
    )


def _account_of(actor: Actor) -> int:
    return actor.account_id


def _staff_of(staff: StaffActor) -> int:
    return staff.staff_id


PATIENTS: Realm[Actor] = Realm(
    prefix="",
    owners="account",
    owner="account",
    passkeys=Passkey,
    cookie="portal_session",
    idle_minutes=lambda settings: settings.session_idle_minutes,
    # A passkey opens health records: the device must check it is the person (biometric,
    # screen lock or PIN), as for staff, not just that someone tapped.
    user_verification=UserVerificationRequirement.REQUIRED,
    user_handle=lambda public_id: public_id.encode(),
    session_columns=f"a.display_name, a.locale, {GRANT_COLUMNS}",
    session_joins=ACCOUNT_GRANTS_JOIN,
    session_join_values=lambda now: (now, now),
    session_order=f"ORDER BY {GRANT_ORDER}",
    principal=_patient,
    owner_of=_account_of,
    sessions_keep_passkey=True,
    announce=_announce_new_passkey,
)

STAFF: Realm[StaffActor] = Realm(
    prefix="staff_",
    owners="staff_user",
    owner="staff",
    passkeys=StaffPasskey,
    # Read only on the console's paths, with a shorter idle time.
    cookie="portal_staff",
    idle_minutes=lambda settings: settings.staff_session_idle_minutes,
    user_verification=UserVerificationRequirement.REQUIRED,
    user_handle=lambda public_id: f"staff:{public_id}".encode(),
    session_columns="a.given_name, a.family_name, a.role",
    principal=_staff,
    owner_of=_staff_of,
)

REALMS: tuple[Realm[Actor] | Realm[StaffActor], ...] = (PATIENTS, STAFF)
