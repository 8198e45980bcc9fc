"""Guest pay: someone without an account pays a statement from its code (printed on the
paper bill) and the patient's date of birth. Limited per address and per code, and every
look and payment audited. The guest sees the amount due and the statement's dates, never
a visit; after a match the browser holds a short-lived signed pass for that statement only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import date, timedelta

from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_insert
from app.services.bills.ledger import AccountRef, account_balance
from app.services.bills.payments import (
    Audit,
    Payer,
    PaymentResult,
    PayPage,
    Receipt,
    account_pay_page,
    amount_from_form,
    card_token_for,
    charge_once,
    in_progress_cents,
    payer_key,
    payment_check,
    receipt_of,
)
from app.services.rate_limit import RateRule, rate_limit_allow, rate_limit_ip
from app.settings import get_settings
from app.tables import Statement

# Guessing a code and a date of birth: a few tries per address, fewer per code.
GUEST_PAY_PER_IP = RateRule("guest_pay_ip", 10, timedelta(hours=1))
GUEST_PAY_PER_CODE = RateRule("guest_pay_code", 5, timedelta(hours=1))
# How long a matched statement stays open in this browser.
PASS_SECONDS = 30 * 60


class GuestRefusedError(Exception):
    """No statement with that code and date of birth (the same answer either way)."""


class GuestLimitedError(Exception):
    """Too many tries: wait and try again, or call the clinic."""


@dataclass(frozen=True)
class Visitor:
    ip: str
    user_agent: str


def normal_code(code: str) -> str:
    return "".join(char for char in code.upper() if char.isalnum())


def _sign(message: str) -> str:
    key = get_settings().secret_key.encode()
    digest = hmac.new(key, f"guest-pay:{message}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def guest_pass_make(statement_public_id: str, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + PASS_SECONDS)
    message = f"{statement_public_id}.{expires}"
    return f"{message}.{_sign(message)}"


def guest_pass_read(token: str | None, *, now: float | None = None) -> str | None:
    """The statement a valid, unexpired pass opens, else None."""
    if not token or token.count(".") != 2:
        return None
    statement, expires, signature = token.split(".")
    if not hmac.compare_digest(_sign(f"{statement}.{expires}"), signature):
        return None
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    return statement


async def guest_find(*, code: str, birth_date: date | None, visitor: Visitor) -> str:
    """The statement's public id when the code and date of birth match."""
    code = normal_code(code)
    if not await rate_limit_ip(GUEST_PAY_PER_IP, ip=visitor.ip, user_agent=visitor.user_agent):
        raise GuestLimitedError()
    if code and not await rate_limit_allow(GUEST_PAY_PER_CODE, code):
        raise GuestLimitedError()
    rows = []
    if code and birth_date is not None:
        rows = await Statement.raw(
            """SELECT s.public_id FROM statement s
               JOIN billing_account ba ON ba.id = s.account
               WHERE s.code = {} AND (
                 EXISTS (SELECT 1 FROM patient g WHERE g.id = ba.guarantor AND g.birth_date = {})
                 OR EXISTS (SELECT 1 FROM billing_member m JOIN patient p ON p.id = m.patient
                            WHERE m.account = ba.id AND p.birth_date = {}))""",
            code,
            birth_date,
            birth_date,
        )
    async with write_transaction():
        await audit_insert(
            action="bills.guest.found" if rows else "bills.guest.refused",
            resource_type="Statement",
            resource_id=str(rows[0]["public_id"]) if rows else "",
            ip=visitor.ip,
            user_agent=visitor.user_agent,
        )
    if not rows:
        raise GuestRefusedError()
    return str(rows[0]["public_id"])


@dataclass(frozen=True)
class GuestStatement:
    statement_id: int
    public_id: str
    issued_on: date
    due_on: date
    account: AccountRef


async def guest_statement(statement_public_id: str) -> GuestStatement:
    rows = await Statement.raw(
        """SELECT s.id, s.public_id, s.issued_on, s.due_on, ba.id AS account_id,
                  ba.public_id AS account_public_id, ba.guarantor, ba.guarantor_name
           FROM statement s JOIN billing_account ba ON ba.id = s.account
           WHERE s.public_id = {}""",
        statement_public_id,
    )
    if not rows:
        raise NotFoundError("statement")
    row = rows[0]
    return GuestStatement(
        statement_id=row["id"],
        public_id=str(row["public_id"]),
        issued_on=row["issued_on"],
        due_on=row["due_on"],
        account=AccountRef(
            id=row["account_id"],
            public_id=str(row["account_public_id"]),
            guarantor_id=row["guarantor"],
            guarantor_name=row["guarantor_name"],
        ),
    )


def guest_audit(visitor: Visitor, statement: GuestStatement) -> Audit:
    async def audit(action: str, resource_id: str) -> None:
        await audit_insert(
            action=action,
            patient=statement.account.guarantor_id,
            resource_type="Payment",
            resource_id=resource_id,
            ip=visitor.ip,
            user_agent=visitor.user_agent,
        )

    return audit


async def guest_pay_page(
    statement_public_id: str, visitor: Visitor
) -> tuple[GuestStatement, PayPage]:
    """What the statement's guest pass shows (the balance), each look audited on the
    guarantor's record."""
    statement = await guest_statement(statement_public_id)
    async with write_transaction():
        await audit_insert(
            action="bills.guest.view",
            patient=statement.account.guarantor_id,
            resource_type="Statement",
            resource_id=statement.public_id,
            ip=visitor.ip,
            user_agent=visitor.user_agent,
        )
        return statement, await account_pay_page(statement.account.id, signed_in_account=None)


async def guest_pay(
    statement_public_id: str,
    *,
    key: str,
    choice: str,
    other: str,
    number: str,
    payment_method: str,
    visitor: Visitor,
) -> PaymentResult:
    statement = await guest_statement(statement_public_id)
    attempt_key = payer_key(key)
    token = await card_token_for(None, saved_card="", number=number, payment_method=payment_method)
    account_id = statement.account.id
    payable = await account_balance(account_id) - await in_progress_cents(account_id)
    payer = Payer(
        account_id=account_id,
        channel="guest",
        audit=guest_audit(visitor, statement),
        statement_id=statement.statement_id,
        ip=visitor.ip,
    )
    result, _ = await charge_once(
        payer,
        key=attempt_key,
        amount_cents=amount_from_form(choice, other, payable),
        card_token=token,
    )
    return result


async def guest_receipt(
    statement_public_id: str, payment_public_id: str, visitor: Visitor
) -> Receipt:
    """A payment made on the statement's account (only through a pass for it), audited."""
    statement = await guest_statement(statement_public_id)
    async with write_transaction():
        await audit_insert(
            action="bills.guest.receipt.view",
            patient=statement.account.guarantor_id,
            resource_type="Payment",
            resource_id=payment_public_id,
            ip=visitor.ip,
            user_agent=visitor.user_agent,
        )
        receipt, _ = await receipt_of(
            statement.account, payment_public_id, statement_id=statement.statement_id
        )
        return receipt


async def guest_payment_check(
    statement_public_id: str, payment_public_id: str, visitor: Visitor
) -> PaymentResult:
    statement = await guest_statement(statement_public_id)
    _, payment_id = await receipt_of(statement.account, payment_public_id)
    payer = Payer(
        account_id=statement.account.id,
        channel="guest",
        audit=guest_audit(visitor, statement),
        statement_id=statement.statement_id,
        ip=visitor.ip,
    )
    return await payment_check(payment_id, payer)
