"""Sign in with a one-time code to the phone or email on file: the fallback for a device
without a passkey, and the way back in after losing one (SECURITY.md).

Codes are six digits, kept as an HMAC, live ten minutes, work once and allow five tries.
Asking for one always gets the same answer, whether or not the contact is on file.
Limits: three codes per contact per quarter hour, ten per IP address per hour, counted in
the database so every app process sees the same numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

from app.db import write_transaction
from app.i18n import N_
from app.services.audit import audit_anonymous
from app.services.clock import utcnow
from app.services.enrollment import account_for_patient
from app.services.outbox import outbox_enqueue
from app.services.sessions import session_start
from app.tables import AccessGrant, Account, SignInCode

CODE_TTL = timedelta(minutes=10)
MAX_CODE_ATTEMPTS = 5
CONTACT_LIMIT, CONTACT_WINDOW = 3, timedelta(minutes=15)
IP_LIMIT, IP_WINDOW = 10, timedelta(hours=1)
CODE_SUBJECT = N_("Your sign-in code")
CODE_TEXT = N_("Your portal sign-in code is %(code)s. It works for 10 minutes. Never share it.")


class CodeError(Exception):
    """`contact`: not a phone or email; `limit`: too many; `wrong`; `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def normalise_contact(text: str) -> tuple[str, str] | None:
    """("email", "a@b.org") or ("sms", "+15550100100"), or None if it is neither."""
    text = text.strip()
    if "@" in text:
        return ("email", text.lower()) if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text) else None
    digits = re.sub(r"\D", "", text)
    if len(digits) == 10:
        digits = "1" + digits  # a North American number typed without +1
    return ("sms", "+" + digits) if 11 <= len(digits) <= 15 else None


async def code_request(*, contact: str, secret: str, ip: str, user_agent: str) -> str:
    """Send a code if the contact belongs to an enrolled patient; returns the handle the
    browser keeps either way."""
    parsed = normalise_contact(contact)
    if parsed is None:
        raise CodeError("contact")
    channel, value = parsed

    async def enrolled_account() -> tuple[int | None, int | None]:
        contact_column = (
            AccessGrant.patient.phone if channel == "sms" else AccessGrant.patient.email
        )
        match = (
            await AccessGrant.select(AccessGrant.account)
            .where(
                AccessGrant.kind == "self",
                AccessGrant.revoked_at.is_null(),
                # Exact match (emails are kept lower-case): a LIKE pattern could match others.
                contact_column == value,
            )
            .first()
        )
        if match is None:
            # A caregiver with no record here: the contact their invitation went to.
            account_column = Account.phone if channel == "sms" else Account.email
            match = (
                await Account.select(Account.id.as_alias("account"))
                .where(account_column == value, Account.disabled_at.is_null())
                .first()
            )
        return (match["account"] if match else None), None

    return await code_issue(
        channel=channel,
        value=value,
        find=enrolled_account,
        secret=secret,
        ip=ip,
        user_agent=user_agent,
    )


async def code_issue(
    *,
    channel: str,
    value: str,
    find: Callable[[], Awaitable[tuple[int | None, int | None]]],
    secret: str,
    ip: str,
    user_agent: str,
) -> str:
    """Within the limits, make a code for whoever `find` names (an account, or a record not
    yet enrolled) and send it to `value`; with nobody found, make a code that never works,
    so the answer looks the same. Returns the browser's handle."""
    contact_hash = _mac(secret, value)
    now = utcnow()
    handle = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(1_000_000):06d}"
    async with write_transaction():
        recent_for_contact = await SignInCode.count().where(
            SignInCode.contact_hash == contact_hash, SignInCode.created_at > now - CONTACT_WINDOW
        )
        recent_from_ip = await SignInCode.count().where(
            SignInCode.ip == ip[:64], SignInCode.created_at > now - IP_WINDOW
        )
        if recent_for_contact >= CONTACT_LIMIT or recent_from_ip >= IP_LIMIT:
            await audit_anonymous(action="auth.code_limited", ip=ip, user_agent=user_agent)
            limited = True
        else:
            limited = False
            account_id, patient_id = await find()
            await SignInCode.insert(
                SignInCode(
                    handle_hash=_mac(secret, handle),
                    code_hash=_mac(secret, code),
                    account=account_id,
                    patient=patient_id,
                    contact_hash=contact_hash,
                    ip=ip[:64],
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )
            if account_id or patient_id:
                await outbox_enqueue(
                    channel=channel,
                    recipient=value,
                    subject=CODE_SUBJECT,
                    body=CODE_TEXT % {"code": code},
                    kind="sign_in_code",
                )
    if limited:
        raise CodeError("limit")
    return handle


async def code_verify(
    *, handle: str, code: str, secret: str, lifetime: timedelta, ip: str, user_agent: str
) -> str:
    """Check the code; on a match start a session and return its token."""
    now = utcnow()
    async with write_transaction():
        row = (
            await SignInCode.select(
                SignInCode.id,
                SignInCode.code_hash,
                SignInCode.account,
                SignInCode.patient,
                SignInCode.patient.given_name,
                SignInCode.patient.family_name,
                SignInCode.failed_attempts,
            )
            .where(
                SignInCode.handle_hash == _mac(secret, handle),
                SignInCode.used_at.is_null(),
                SignInCode.expires_at > now,
                SignInCode.failed_attempts < MAX_CODE_ATTEMPTS,
            )
            .first()
        )
        if row is None:
            failure: str | None = "expired"
        elif (row["account"] is None and row["patient"] is None) or not hmac.compare_digest(
            row["code_hash"], _mac(secret, code.strip())
        ):
            failures = row["failed_attempts"] + 1
            await SignInCode.update({SignInCode.failed_attempts: failures}).where(
                SignInCode.id == row["id"]
            )
            await audit_anonymous(action="auth.code_wrong", ip=ip, user_agent=user_agent)
            failure = "expired" if failures >= MAX_CODE_ATTEMPTS else "wrong"
        else:
            failure = None
            await SignInCode.update({SignInCode.used_at: now}).where(SignInCode.id == row["id"])
            account_id = row["account"]
            if account_id is None:
                # Self-enrollment from a poster: the record's first account.
                account_id = await account_for_patient(
                    row["patient"],
                    f"{row['patient.given_name']} {row['patient.family_name']}",
                )
            token = await session_start(
                account_id=account_id,
                acting_patient_id=row["patient"],
                lifetime=lifetime,
                ip=ip,
                user_agent=user_agent,
                reason="code" if row["account"] else "self_enrollment",
            )
    if failure is not None:
        raise CodeError(failure)
    return token
