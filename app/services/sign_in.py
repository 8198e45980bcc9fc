"""Sign in with a one-time code to the phone or email on file: the fallback for a device
without a passkey, and the way back in after losing one (docs/security.md).

Codes are six digits, kept as an HMAC, live ten minutes, work once and allow five tries.
Asking for one always gets the same answer, whether or not the contact is on file.
A contact that more than one person uses (a shared family phone) never picks one of them:
after the right code, the date of birth says who is signing in.
Limits: three codes per contact per quarter hour and ten a day; ten wrong codes per contact
a day, across all its codes; ten codes per IP address (an IPv6 /64) per hour. They are
counted in the database so every app process sees the same numbers. A contact that reaches
a daily limit is paused for the rest of the day, and the person on file is told: someone
else may be trying, and their passkey still works.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.notices import send_codes_paused, send_shared_sign_in_notice, send_sign_in_code
from app.services.accounts import account_contacts
from app.services.audit import audit_anonymous
from app.services.enrollment import account_for_patient
from app.services.rate_limit import rate_key
from app.services.self_access import GRANT_HOLDER_COLUMNS, holder_from, self_access_refusal
from app.services.sessions import session_start
from app.tables import AccessGrant, Account, SignInCode

CODE_TTL = timedelta(minutes=10)
# The longest phone or email kept (the contact columns are 200 characters wide).
MAX_CONTACT_LENGTH = 200
MAX_CODE_ATTEMPTS = 5
CONTACT_LIMIT, CONTACT_WINDOW = 3, timedelta(minutes=15)
IP_LIMIT, IP_WINDOW = 10, timedelta(hours=1)
# Daily caps per contact: a slow guesser over many codes gets ten guesses a day in a million,
# and one person's typos over a day fit well within them.
CONTACT_DAY_LIMIT, CONTACT_GUESS_BUDGET, DAY = 10, 10, timedelta(days=1)


class CodeError(Exception):
    """`contact`: not a phone or email; `limit`: too many for now; `locked`: too many
    today; `wrong`; `expired`; `mismatch`: the date of birth matched none of the people
    using the contact."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CodeTarget:
    """Whom a code signs in: an account, a record not yet enrolled (a poster), or, for a
    contact several people use, the records to choose from by date of birth."""

    account: int | None = None
    patient: int | None = None
    choices: tuple[int, ...] = ()

    @property
    def anyone(self) -> bool:
        return bool(self.account or self.patient or self.choices)


def _mac(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def _ascii_digit(char: str) -> str:
    value = unicodedata.decimal(char, None)
    return str(value) if value is not None else char


def normalise_contact(text: str) -> tuple[str, str] | None:
    """("email", "a@b.org") or ("sms", "+15550100100"), or None if it is neither."""
    text = text.strip()
    if len(text) > MAX_CONTACT_LENGTH:
        return None
    if "@" in text:
        return ("email", text.lower()) if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text) else None
    # Other scripts' digits (fullwidth, Arabic-Indic) become ASCII ones, and everything else
    # goes: one phone has one spelling, so one set of limits and one waiting invitation.
    digits = re.sub(r"[^0-9]", "", "".join(_ascii_digit(char) for char in text))
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

    async def find() -> CodeTarget:
        return await _people_with_contact(channel, value)

    return await code_issue(
        channel=channel,
        value=value,
        find=find,
        secret=secret,
        ip=ip,
        user_agent=user_agent,
    )


async def _people_with_contact(channel: str, value: str) -> CodeTarget:
    """Everyone this contact may sign in: accounts holding a self grant on a record with it
    (a minor's only when the contact is their own, self_access.py), and accounts that have
    it themselves (a caregiver with no record here). One person: them; several: their records,
    to choose from by date of birth; a caregiver without a record cannot be told apart
    that way, so is never chosen for a shared contact."""
    contact_column = AccessGrant.patient.phone if channel == "sms" else AccessGrant.patient.email
    rows = await AccessGrant.select(AccessGrant.account, *GRANT_HOLDER_COLUMNS).where(
        AccessGrant.kind == "self",
        AccessGrant.revoked_at.is_null(),
        AccessGrant.account.disabled_at.is_null(),
        # Exact match (emails are kept lower-case): a LIKE pattern could match others.
        contact_column == value,
    )
    records: dict[int, int] = {}  # account -> its record
    for row in rows:
        if await self_access_refusal(holder_from(row, prefix="patient."), channel) is None:
            records.setdefault(row["account"], row["patient.id"])
    account_column = Account.phone if channel == "sms" else Account.email
    accounts = {
        row["id"]
        for row in await Account.select(Account.id).where(
            account_column == value, Account.disabled_at.is_null()
        )
    }
    people = accounts | set(records)
    if len(people) == 1:
        return CodeTarget(account=people.pop())
    return CodeTarget(choices=tuple(sorted(records.values()))) if people else CodeTarget()


async def code_issue(
    *,
    channel: str,
    value: str,
    find: Callable[[], Awaitable[CodeTarget]],
    secret: str,
    ip: str,
    user_agent: str,
    proof_of_contact: Callable[[str], Awaitable[None]] | None = None,
) -> str:
    """Within the limits, make a code for whoever `find` names (an account, or a record not
    yet enrolled) and send it to `value`; with nobody found, make a code that never works,
    so the answer looks the same. Returns the browser's handle.

    `proof_of_contact` sends, instead, a code that only proves the person holds `value` (see
    `code_confirm`): it names no one, so it signs no one in."""
    contact_hash = _mac(secret, value)
    now = utcnow()
    handle = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(1_000_000):06d}"
    network = rate_key(ip)[:64]  # an IPv6 /64 is one household's or one attacker's
    async with write_transaction():
        # Requests for one contact or network queue here, so each one counts the codes
        # the others made (without it, nine requests at once all saw none and all sent).
        await lock_names(f"code-contact:{contact_hash}", f"code-ip:{network}")
        today_for_contact = await SignInCode.count().where(
            SignInCode.contact_hash == contact_hash, SignInCode.created_at > now - DAY
        )
        recent_for_contact = await SignInCode.count().where(
            SignInCode.contact_hash == contact_hash, SignInCode.created_at > now - CONTACT_WINDOW
        )
        recent_from_ip = await SignInCode.count().where(
            SignInCode.ip == network, SignInCode.created_at > now - IP_WINDOW
        )
        limited: str | None = None
        if today_for_contact >= CONTACT_DAY_LIMIT or (
            await _guesses_today(contact_hash, now) >= CONTACT_GUESS_BUDGET
        ):
            limited = "locked"
        elif recent_for_contact >= CONTACT_LIMIT or recent_from_ip >= IP_LIMIT:
            limited = "limit"
        if limited:
            await audit_anonymous(action="auth.code_limited", ip=ip, user_agent=user_agent)
        else:
            target = await find()
            await SignInCode.insert(
                SignInCode(
                    handle_hash=_mac(secret, handle),
                    code_hash=_mac(secret, code),
                    account=target.account,
                    patient=target.patient,
                    choices=",".join(str(choice) for choice in target.choices),
                    contact_hash=contact_hash,
                    ip=network,
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )
            if target.anyone or proof_of_contact:
                if proof_of_contact:
                    await proof_of_contact(code)
                else:
                    await send_sign_in_code(
                        to=(channel, value), code=code, account_id=target.account
                    )
                if today_for_contact + 1 == CONTACT_DAY_LIMIT:  # the day's last
                    await send_codes_paused(account_id=target.account, patient_id=target.patient)
    if limited:
        raise CodeError(limited)
    return handle


async def _guesses_today(contact_hash: str, now: datetime) -> int:
    """Wrong codes entered for this contact in the last day, over all its codes."""
    rows = await SignInCode.raw(
        """
        SELECT COALESCE(SUM(failed_attempts), 0) AS used FROM sign_in_code
        WHERE contact_hash = {} AND created_at > {}
        """,
        contact_hash,
        now - DAY,
    )
    return int(rows[0]["used"])


async def _pending(secret: str, handle: str) -> dict[str, Any] | None:
    """The browser's live code: not used, not expired, tries left."""
    now = utcnow()
    row: dict[str, Any] | None = (
        await SignInCode.select(
            SignInCode.id,
            SignInCode.code_hash,
            SignInCode.account,
            SignInCode.patient,
            SignInCode.patient.given_name,
            SignInCode.patient.family_name,
            SignInCode.failed_attempts,
            SignInCode.choices,
            SignInCode.code_ok_at,
            SignInCode.contact_hash,
        )
        .where(
            SignInCode.handle_hash == _mac(secret, handle),
            SignInCode.used_at.is_null(),
            SignInCode.expires_at > now,
            SignInCode.failed_attempts < MAX_CODE_ATTEMPTS,
        )
        .first()
    )
    return row


async def _day_budget_used(row: dict[str, Any] | None) -> bool:
    """The contact's wrong guesses for the day are used up: even the right code fails.
    Locks the contact for the rest of the transaction, so guesses on its several codes
    sent at once are checked against the budget one after another."""
    if row is None:
        return False
    await lock_names(f"code-contact:{row['contact_hash']}")
    return await _guesses_today(row["contact_hash"], utcnow()) >= CONTACT_GUESS_BUDGET


async def _count_failure(row: dict[str, Any], action: str, reason: str, ip: str, ua: str) -> str:
    await lock_names(f"code-contact:{row['contact_hash']}")  # the budget check below
    failures = await _claim_failure(row["id"])
    await audit_anonymous(action=action, ip=ip, user_agent=ua)
    if failures is not None and (
        await _guesses_today(row["contact_hash"], utcnow()) == CONTACT_GUESS_BUDGET
    ):
        await send_codes_paused(
            account_id=row["account"], patient_id=row["patient"]
        )  # the day's last guess
        return "locked"
    return "expired" if failures is None or failures >= MAX_CODE_ATTEMPTS else reason


async def _claim_failure(code_id: int) -> int | None:
    """Count a wrong try in one statement, so racing requests cannot all read the same count:
    the failures so far, or None when no tries were left (or the code was used) by this
    one's turn. The row lock queues concurrent claims on PostgreSQL; SQLite writes one at a
    time."""
    rows = await SignInCode.raw(
        """
        UPDATE sign_in_code SET failed_attempts = failed_attempts + 1
        WHERE id = {} AND used_at IS NULL AND failed_attempts < {}
        RETURNING failed_attempts
        """,
        code_id,
        MAX_CODE_ATTEMPTS,
    )
    return int(rows[0]["failed_attempts"]) if rows else None


async def _claim_success(code_id: int, column: str, now: datetime) -> bool:
    """Mark a right answer (`used_at`, or `code_ok_at` before the date of birth step) only
    while the code is unused with tries left: of two racing right answers one wins, and a
    right guess that comes after the fifth wrong one does not count."""
    assert column in ("used_at", "code_ok_at")
    rows = await SignInCode.raw(
        f"""
        UPDATE sign_in_code SET {column} = {{}}
        WHERE id = {{}} AND used_at IS NULL AND failed_attempts < {{}}
        RETURNING id
        """,  # noqa: S608  (only a fixed column name is formatted in)
        now,
        code_id,
        MAX_CODE_ATTEMPTS,
    )
    return bool(rows)


async def code_verify(
    *, handle: str, code: str, secret: str, lifetime: timedelta, ip: str, user_agent: str
) -> str | None:
    """Check the code; on a match start a session and return its token. None when the
    contact is shared: the date of birth comes next (code_choose)."""
    now = utcnow()
    token: str | None = None
    async with write_transaction():
        row = await _pending(secret, handle)
        if row is None:
            failure: str | None = "expired"
        elif await _day_budget_used(row):
            failure = "locked"
        elif not (row["account"] or row["patient"] or row["choices"]) or not hmac.compare_digest(
            row["code_hash"], _mac(secret, code.strip())
        ):
            failure = await _count_failure(row, "auth.code_wrong", "wrong", ip, user_agent)
        elif row["choices"]:
            failure = None if await _claim_success(row["id"], "code_ok_at", now) else "expired"
        elif not await _claim_success(row["id"], "used_at", now):
            failure = "expired"
        else:
            failure = None
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


async def code_choose(
    *, handle: str, birth_date: date, secret: str, lifetime: timedelta, ip: str, user_agent: str
) -> str:
    """After the right code for a shared contact: the one person of those using it with this
    date of birth signs in. None or several: `mismatch` (counted with the code's tries)."""
    now = utcnow()
    async with write_transaction():
        row = await _pending(secret, handle)
        if row is None or row["code_ok_at"] is None or not row["choices"]:
            raise CodeError("expired")
        if await _day_budget_used(row):
            raise CodeError("locked")
        choices = [int(choice) for choice in row["choices"].split(",")]
        matches = await AccessGrant.select(AccessGrant.account, AccessGrant.patient).where(
            AccessGrant.patient.is_in(choices),
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
            AccessGrant.patient.birth_date == birth_date,
        )
        if len({match["account"] for match in matches}) != 1:
            failure = await _count_failure(
                row, "auth.code_birth_date_wrong", "mismatch", ip, user_agent
            )
        elif not await _claim_success(row["id"], "used_at", now):
            failure = "expired"
        else:
            failure = None
            token = await session_start(
                account_id=matches[0]["account"],
                acting_patient_id=matches[0]["patient"],
                lifetime=lifetime,
                ip=ip,
                user_agent=user_agent,
                reason="code",
            )
            await _announce_shared_sign_in(matches[0]["account"], secret, row["contact_hash"])
    if failure is not None:
        raise CodeError(failure)
    return token


async def _announce_shared_sign_in(account_id: int, secret: str, used_hash: str) -> None:
    """The date of birth only keeps people from landing in the wrong record by mistake:
    anyone sharing the contact who knows it gets in. So the account's other contacts hear
    of it, and the person can act if it was not them."""
    phone, email = await account_contacts(account_id)
    others = [
        (channel, recipient)
        for channel, recipient in (("sms", phone), ("email", email))
        if recipient and not hmac.compare_digest(_mac(secret, recipient), used_hash)
    ]
    await send_shared_sign_in_notice(account_id=account_id, to=others)


async def code_confirm(
    *, handle: str, code: str, secret: str, contact: str, ip: str, user_agent: str
) -> None:
    """Check a code sent with `proof_of_contact` to `contact`, and use it up; raises
    CodeError ("wrong", "expired") otherwise. Its own transaction, so wrong tries count
    even when the caller's work fails. Same lifetime and tries as a sign-in code."""
    now = utcnow()
    async with write_transaction():
        row = (
            await SignInCode.select(
                SignInCode.id,
                SignInCode.code_hash,
                SignInCode.failed_attempts,
                SignInCode.contact_hash,
                SignInCode.account,
                SignInCode.patient,
            )
            .where(
                SignInCode.handle_hash == _mac(secret, handle),
                SignInCode.contact_hash == _mac(secret, contact),
                SignInCode.account.is_null(),
                SignInCode.patient.is_null(),
                SignInCode.used_at.is_null(),
                SignInCode.expires_at > now,
                SignInCode.failed_attempts < MAX_CODE_ATTEMPTS,
            )
            .first()
        )
        if row is None:
            failure: str | None = "expired"
        elif await _day_budget_used(row):
            failure = "locked"  # as for sign-in codes: the contact's guesses for the day are spent
        elif not hmac.compare_digest(row["code_hash"], _mac(secret, code.strip())):
            failure = await _count_failure(row, "auth.code_wrong", "wrong", ip, user_agent)
        else:
            failure = None if await _claim_success(row["id"], "used_at", now) else "expired"
    if failure is not None:
        raise CodeError(failure)
