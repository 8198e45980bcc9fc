"""Telling the family about bills: a statement is ready, and (five days before it is due,
while something is owed) a payment is due. Each goes once: the worker marks the statement
as it queues the notice, in one transaction. A notice goes to the guarantor's record when
the guarantor is a patient here, else to each record the account covers; it names no amount
and no visit."""

from __future__ import annotations

from datetime import timedelta

from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.notices.bills import send_payment_due, send_statement_ready
from app.services.bills.ledger import BALANCE_SQL
from app.tables import BillingAccount, BillingMember, Statement

# "Due soon": this many days before a statement's due date.
DUE_NOTICE_DAYS = 5


async def _records(account_id: int, guarantor_id: int | None) -> list[int]:
    if guarantor_id is not None:
        return [guarantor_id]
    rows = await BillingMember.select(BillingMember.patient).where(
        BillingMember.account == account_id
    )
    return [row["patient"] for row in rows]


async def bill_notices_send() -> int:
    """Queue each statement's ready and due-soon notices once (the worker runs this every
    minute); how many statements were told of."""
    now, today = utcnow(), clinic_today()
    told = 0
    async with write_transaction():
        ready = await Statement.raw(
            """UPDATE statement SET ready_notice_at = {}
               WHERE ready_notice_at IS NULL
               RETURNING public_id, account""",
            now,
        )
        due = await Statement.raw(
            f"""UPDATE statement SET due_notice_at = {{}}
               WHERE due_notice_at IS NULL AND due_on <= {{}} AND due_on >= {{}}
                 AND (SELECT {BALANCE_SQL} FROM ledger_entry l
                      WHERE l.account = statement.account) > 0
               RETURNING public_id, account""",  # noqa: S608  (a fixed expression)
            now,
            today + timedelta(days=DUE_NOTICE_DAYS),
            today,
        )
        accounts = sorted({row["account"] for row in [*ready, *due]})
        guarantors = {
            row["id"]: row["guarantor"]
            for row in (
                await BillingAccount.select(BillingAccount.id, BillingAccount.guarantor).where(
                    BillingAccount.id.is_in(accounts)
                )
                if accounts
                else []
            )
        }
        for rows, send in ((ready, send_statement_ready), (due, send_payment_due)):
            for row in rows:
                for patient_id in await _records(row["account"], guarantors.get(row["account"])):
                    await send(patient_id=patient_id, statement_public_id=str(row["public_id"]))
                told += 1
    return told
