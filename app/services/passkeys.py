"""Passkeys with py_webauthn: add one on this device, sign in with one tap, list, remove.

One ceremony for patients and staff, told apart by the realm (identity.py): its passkey
table, its challenge purposes, its user-verification rule and its audit rows. Challenges live
in the database (any process can finish a ceremony another began), expire after five minutes
and are used once. The browser holds only a random handle to one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from app.access import Actor
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.accounts import account_contacts
from app.services.audit import audit_record
from app.services.identity import PATIENTS, REALMS, P, Realm
from app.services.sessions import session_open, token_hash
from app.tables import Passkey, WebAuthnChallenge, WebSession

CHALLENGE_TTL = timedelta(minutes=5)


class PasskeyError(Exception):
    """The ceremony failed: expired, reused, forged, or unknown. One message for all."""


class UnverifiedUserError(PasskeyError):
    """A genuine response from a device that did not check it was the person (no screen
    lock, a security key without a PIN). Said plainly: the person can fix it."""


class KnownCredentialError(PasskeyError):
    """The new passkey's credential id is already registered here (WebAuthn §7.1 step 22)."""


class LastPasskeyError(Exception):
    """Removing this passkey would leave the account with no way to sign in."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origin: str


@dataclass(frozen=True)
class PasskeyOwner:
    """Who a new passkey is for: a patient's account or a staff member, in their realm."""

    id: int
    public_id: str
    name: str


@dataclass(frozen=True)
class PasskeyLine:
    public_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TakenChallenge:
    challenge: bytes
    # Whose ceremony it was (a registration's owner; None for a sign-in).
    owner_id: int | None


async def challenge_store(
    realm: Realm[P], ceremony: str, challenge: bytes, *, owner_id: int | None = None
) -> str:
    """Keep a ceremony's challenge; returns the random handle the browser holds."""
    handle = secrets.token_urlsafe(24)
    async with write_transaction():
        await WebAuthnChallenge.insert(
            WebAuthnChallenge(
                handle_hash=token_hash(handle),
                purpose=realm.purpose(ceremony),
                challenge=bytes_to_base64url(challenge),
                expires_at=utcnow() + CHALLENGE_TTL,
                **realm.owned_by(owner_id),
            )
        )
    return handle


async def challenge_take(realm: Realm[P], ceremony: str, handle: str) -> TakenChallenge:
    """Use a challenge once (inside the caller's transaction): a replay finds it used, and
    a challenge made for one purpose (a patient's sign-in) never serves another (staff's)."""
    now = utcnow()
    rows = await WebAuthnChallenge.raw(
        f"""
        UPDATE webauthn_challenge SET used_at = {{}}
        WHERE handle_hash = {{}} AND purpose = {{}} AND used_at IS NULL AND expires_at > {{}}
        RETURNING challenge, {realm.owner} AS owner_id
        """,  # noqa: S608  (only a constant column name is formatted in)
        now,
        token_hash(handle),
        realm.purpose(ceremony),
        now,
    )
    if not rows:
        raise PasskeyError("challenge")
    return TakenChallenge(base64url_to_bytes(rows[0]["challenge"]), rows[0]["owner_id"])


async def passkey_creation_options(
    realm: Realm[P], *, owner: PasskeyOwner, rp: RelyingParty
) -> tuple[str, str]:
    """Options for navigator.credentials.create() and the handle of their challenge."""
    table = realm.passkeys
    existing = await table.select(table.credential_id).where(
        getattr(table, realm.owner) == owner.id
    )
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=realm.user_handle(owner.public_id),
        user_name=owner.name,
        user_display_name=owner.name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=realm.user_verification,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(row["credential_id"]))
            for row in existing
        ],
    )
    handle = await challenge_store(realm, "register", options.challenge, owner_id=owner.id)
    return options_to_json(options), handle


async def passkey_keep(
    realm: Realm[P],
    *,
    owner_id: int,
    rp: RelyingParty,
    handle: str,
    credential: dict[str, Any],
    device_name: str,
    ip: str,
    user_agent: str,
) -> str:
    """Verify a new credential for its owner, keep it, announce and audit it (inside the
    caller's transaction); returns its public id."""
    taken = await challenge_take(realm, "register", handle)
    if taken.owner_id != owner_id:
        raise PasskeyError("owner")
    verified = registration_check(realm, rp=rp, challenge=taken.challenge, credential=credential)
    await credential_id_unused(verified.credential_id)
    passkey = realm.passkeys(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        name=device_name[:80],
        **realm.owned_by(owner_id),
    )
    await passkey.save()
    if realm.announce is not None:
        await realm.announce(owner_id)
    await realm.audit(
        owner_id,
        "passkey_added",
        ip=ip,
        user_agent=user_agent,
        resource_type="Passkey",
        resource_id=str(passkey.public_id),
    )
    return str(passkey.public_id)


async def passkey_registration_options(*, actor: Actor, rp: RelyingParty) -> tuple[str, str]:
    """Options to add a passkey to the signed-in account."""
    owner = PasskeyOwner(actor.account_id, actor.account_public_id, actor.display_name)
    return await passkey_creation_options(PATIENTS, owner=owner, rp=rp)


async def passkey_register(
    *, actor: Actor, rp: RelyingParty, handle: str, credential: dict[str, Any], device_name: str
) -> str:
    """Add a passkey to the signed-in account; returns its public id."""
    async with write_transaction():
        return await passkey_keep(
            PATIENTS,
            owner_id=actor.account_id,
            rp=rp,
            handle=handle,
            credential=credential,
            device_name=device_name,
            ip=actor.ip,
            user_agent=actor.user_agent,
        )


def registration_check(
    realm: Realm[P], *, rp: RelyingParty, challenge: bytes, credential: dict[str, Any]
) -> VerifiedRegistration:
    """Verify a new credential, user verification included; else PasskeyError."""
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            # Checked below instead, after the signature: only a genuine response earns
            # the plain explanation of what to fix.
            require_user_verification=False,
        )
    except WebAuthnException as error:  # any malformed or forged response
        raise PasskeyError("registration") from error
    if realm.verifies_user and not verified.user_verified:
        raise UnverifiedUserError("registration")
    return verified


async def credential_id_unused(credential_id: bytes) -> None:
    """WebAuthn §7.1 step 22: a credential id registered before (to anyone, patient or
    staff) is refused, not stored twice. Inside the caller's transaction."""
    encoded = bytes_to_base64url(credential_id)
    for realm in REALMS:
        if await realm.passkeys.exists().where(realm.passkeys.credential_id == encoded):
            raise KnownCredentialError("registered")


async def passkey_authentication_options(realm: Realm[P], *, rp: RelyingParty) -> tuple[str, str]:
    """Options for navigator.credentials.get(): no account named, the device offers its own.
    The challenge is the realm's: a patient's never serves a staff sign-in."""
    options = generate_authentication_options(
        rp_id=rp.id, user_verification=realm.user_verification
    )
    handle = await challenge_store(realm, "authenticate", options.challenge)
    return options_to_json(options), handle


async def passkey_sign_in(
    realm: Realm[P],
    *,
    rp: RelyingParty,
    handle: str,
    credential: dict[str, Any],
    lifetime: timedelta,
    ip: str,
    user_agent: str,
) -> str:
    """Check the assertion and start a session in the realm; returns the session token.

    A failed attempt still uses up its challenge and is audited."""
    async with write_transaction():
        try:
            passkey_id, owner_id, sign_count = await _verify_assertion(
                realm, rp, handle, credential
            )
        except PasskeyError as error:
            await realm.audit(None, "sign_in_failed", ip=ip, user_agent=user_agent)
            failed: PasskeyError | None = error
        else:
            failed = None
            table = realm.passkeys
            await table.update({table.sign_count: sign_count, table.last_used_at: utcnow()}).where(
                table.id == passkey_id
            )
            token = await session_open(
                realm,
                owner_id,
                lifetime=lifetime,
                ip=ip,
                user_agent=user_agent,
                reason="passkey",
                passkey_id=passkey_id,
            )
    if failed is not None:
        raise failed
    return token


async def _verify_assertion(
    realm: Realm[P], rp: RelyingParty, handle: str, credential: dict[str, Any]
) -> tuple[int, int, int]:
    """(passkey id, owner id, new sign count) for a valid assertion by a passkey of this
    realm whose owner is not disabled, else PasskeyError."""
    challenge = (await challenge_take(realm, "authenticate", handle)).challenge
    rows = await realm.passkeys.raw(
        f"""
        SELECT p.id, p.{realm.owner} AS owner_id, p.public_key, p.sign_count
        FROM {realm.passkeys._meta.tablename} p JOIN {realm.owners} a ON a.id = p.{realm.owner}
        WHERE p.credential_id = {{}} AND a.disabled_at IS NULL
        """,  # noqa: S608  (only constant table and column names are formatted in)
        str(credential.get("id", "")),
    )
    if not rows:
        raise PasskeyError("unknown credential")
    passkey = rows[0]
    sign_count = assertion_check(
        realm,
        rp=rp,
        challenge=challenge,
        credential=credential,
        public_key=passkey["public_key"],
        sign_count=passkey["sign_count"],
    )
    return passkey["id"], passkey["owner_id"], sign_count


def assertion_check(
    realm: Realm[P],
    *,
    rp: RelyingParty,
    challenge: bytes,
    credential: dict[str, Any],
    public_key: str,
    sign_count: int,
) -> int:
    """Verify a WebAuthn assertion against a stored key, user verification included; the
    new sign count, else PasskeyError (whatever was malformed or forged)."""
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=sign_count,
            require_user_verification=False,  # checked below, after the signature
        )
    except WebAuthnException as error:
        raise PasskeyError("assertion") from error
    if realm.verifies_user and not verified.user_verified:
        raise UnverifiedUserError("assertion")
    return int(verified.new_sign_count)


async def passkeys_list(*, actor: Actor) -> list[PasskeyLine]:
    rows = await (
        Passkey.select(Passkey.public_id, Passkey.name, Passkey.created_at, Passkey.last_used_at)
        .where(Passkey.account == actor.account_id)
        .order_by(Passkey.created_at)
    )
    return [PasskeyLine(**row) for row in rows]


async def passkey_remove(*, actor: Actor, public_id: str, end_its_sessions: bool = False) -> None:
    """Remove one of the account's passkeys and, if asked, sign out every device it signed
    in. Someone else's id is 404, like an unknown one."""
    async with write_transaction():
        found = (
            await Passkey.select(Passkey.id)
            .where(Passkey.public_id == public_id, Passkey.account == actor.account_id)
            .first()
        )
        if found is None:
            raise NotFoundError(public_id)
        remaining = await Passkey.count().where(Passkey.account == actor.account_id) - 1
        if remaining == 0 and not await _code_can_reach(actor.account_id):
            raise LastPasskeyError(public_id)
        if end_its_sessions:
            await WebSession.update({WebSession.revoked_at: utcnow()}).where(
                WebSession.passkey == found["id"], WebSession.revoked_at.is_null()
            )
        await Passkey.delete().where(Passkey.id == found["id"])
        await audit_record(
            actor=actor,
            action="auth.passkey_removed",
            resource_type="Passkey",
            resource_id=public_id,
        )


async def passkey_rename(*, actor: Actor, public_id: str, name: str) -> None:
    """Give a passkey a name the person recognises ("Work laptop")."""
    name = " ".join(name.split())[:80]
    if not name:
        raise ValueError("empty name")
    async with write_transaction():
        renamed = (
            await Passkey.update({Passkey.name: name})
            .where(Passkey.public_id == public_id, Passkey.account == actor.account_id)
            .returning(Passkey.id)
        )
        if not renamed:
            raise NotFoundError(public_id)
        await audit_record(
            actor=actor,
            action="auth.passkey_renamed",
            resource_type="Passkey",
            resource_id=public_id,
        )


async def _code_can_reach(account_id: int) -> bool:
    """Whether a sign-in code can reach this account (codes go only to these contacts)."""
    phone, email = await account_contacts(account_id)
    return bool(phone or email)


def device_name(user_agent: str) -> str:
    """A name a person recognises for the device a passkey was made on."""
    platforms = (
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Macintosh", "Mac"),
        ("Windows", "Windows"),
        ("CrOS", "Chromebook"),
        ("Linux", "Linux"),
    )
    browsers = (
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    )
    platform = next((name for marker, name in platforms if marker in user_agent), "")
    browser = next((name for marker, name in browsers if marker in user_agent), "")
    if platform and browser:
        return f"{browser} · {platform}"
    return platform or browser or "This device"


def credential_from(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise PasskeyError("json") from error
    if not isinstance(data, dict) or not isinstance(data.get("credential"), dict):
        raise PasskeyError("shape")
    credential: dict[str, Any] = data["credential"]
    return credential
