"""Telling the family about bills: a statement is ready, a payment is due soon. The notice
goes to the guarantor's record when the guarantor is a patient here, else to each record
the account covers; a notice names no amount and no visit."""

from __future__ import annotations

from datetime import timedelta

from app.clinic import clinic_today
from app.db import write_transaction
from app.notices.bills import send_payment_due, send_statement_ready
from app.services.bills.ledger import account_balance
from app.tables import BillingMember, Statement

# "Due soon": this many days before a statement's due date, once.
DUE_NOTICE_DAYS = 5


async def _records(account_id: int, guarantor_id: int | None) -> list[int]:
    if guarantor_id is not None:
        return [guarantor_id]
    rows = await BillingMember.select(BillingMember.patient).where(
        BillingMember.account == account_id
    )
    return [row["patient"] for row in rows]


async def statement_ready_notify(statement_public_id: str) -> int:
    """How many people were told a statement is ready."""
    rows = await Statement.select(
        Statement.public_id, Statement.account, Statement.account.guarantor
    ).where(Statement.public_id == statement_public_id)
    if not rows:
        return 0
    row = rows[0]
    told = 0
    async with write_transaction():
        for patient_id in await _records(row["account"], row["account.guarantor"]):
            told += await send_statement_ready(
                patient_id=patient_id, statement_public_id=str(row["public_id"])
            )
    return told


async def payment_due_notify(statement_public_id: str) -> int:
    """How many people were told a statement is due soon (not when it is paid)."""
    rows = await Statement.select(
        Statement.public_id, Statement.account, Statement.account.guarantor, Statement.due_on
    ).where(Statement.public_id == statement_public_id)
    if not rows or rows[0]["due_on"] > clinic_today() + timedelta(days=DUE_NOTICE_DAYS):
        return 0
    row = rows[0]
    if await account_balance(row["account"]) <= 0:
        return 0
    told = 0
    async with write_transaction():
        for patient_id in await _records(row["account"], row["account.guarantor"]):
            told += await send_payment_due(
                patient_id=patient_id, statement_public_id=str(row["public_id"])
            )
    return told
