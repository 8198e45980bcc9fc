"""Settling a payment in review: money Stripe took that the portal did not post (Stripe's
amount was not ours, or it came after our payment had ended). The billing office either
posts it to the bill, when Stripe took exactly our amount and the account still owes it, or
gives all of it back at Stripe. Either way the answer comes from Stripe as it is now (the
Checkout Session), not from what the page showed, and a payment leaves review once."""

from __future__ import annotations

import logging

from app.access import StaffActor
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_staff
from app.services.bills.ledger import account_balance
from app.services.bills.payments import PaymentRefusedError, account_lock, payment_fact
from app.services.bills.processors import (
    CheckoutSession,
    ProcessorBusyError,
    ProcessorRefusedError,
    ProcessorRetryError,
    ProcessorTimeoutError,
    processor_for,
)
from app.tables import LedgerEntry, Payment

log = logging.getLogger("portal.bills")


async def _in_review(payment_public_id: str) -> dict[str, object]:
    rows = await Payment.raw(
        """SELECT y.id, y.account, y.amount_cents, y.currency, y.status, y.processor_ref,
                  y.checkout_session, ba.public_id AS account_public_id,
                  COALESCE(y.patient, ba.guarantor) AS patient
           FROM payment y JOIN billing_account ba ON ba.id = y.account
           WHERE y.public_id = {}""",
        payment_public_id,
    )
    if not rows:
        raise NotFoundError("payment")
    if rows[0]["status"] != "review" or not rows[0]["checkout_session"]:
        raise PaymentRefusedError("review_settled")  # settled already (a second tap, a tab)
    return dict(rows[0])


async def _stripe_now(row: dict[str, object]) -> CheckoutSession:
    """What Stripe holds for the payment now: it must say paid, by this payment."""
    try:
        session = await processor_for().checkout_status(str(row["checkout_session"]))
    except (ProcessorBusyError, ProcessorRetryError, ProcessorTimeoutError) as error:
        raise PaymentRefusedError("processor_timeout") from error
    except ProcessorRefusedError as error:
        raise PaymentRefusedError("review_unknown") from error
    paid = session.outcome is not None and session.outcome.status == "succeeded"
    if not paid or session.payment_public_id != str(row["public_id"]):
        raise PaymentRefusedError("review_unknown")
    return session


async def billing_review_settle(staff: StaffActor, payment_public_id: str, *, action: str) -> str:
    """Post a payment in review, or refund it in full at Stripe. The account's public id."""
    if action not in ("post", "refund"):
        raise PaymentRefusedError("review_unknown")
    row = await _in_review(payment_public_id)
    row["public_id"] = payment_public_id
    session = await _stripe_now(row)
    if action == "post":
        await _post(staff, row, session)
    else:
        await _refund(staff, row, session)
    return str(row["account_public_id"])


async def _post(staff: StaffActor, row: dict[str, object], session: CheckoutSession) -> None:
    """Onto the bill as a payment, only for exactly our amount and never past what is owed
    (money over it goes back instead)."""
    amount = int(str(row["amount_cents"]))
    if session.amount_cents != amount or session.currency.lower() != str(row["currency"]).lower():
        raise PaymentRefusedError("review_amount_differs")
    account_id = int(str(row["account"]))
    async with write_transaction():
        await lock_names(account_lock(account_id))
        if amount > await account_balance(account_id):
            raise PaymentRefusedError("review_more_than_owed")
        moved = await (
            Payment.update({Payment.status: "succeeded", Payment.completed_at: utcnow()})
            .where((Payment.id == row["id"]) & (Payment.status == "review"))
            .returning(Payment.id)
        )
        if not moved:
            return  # a twin click settled it first
        await LedgerEntry.insert(
            LedgerEntry(
                account=account_id,
                kind="payment",
                amount_cents=amount,
                payment=int(str(row["id"])),
                posted_by_staff=staff.staff_id,
            )
        )
        await payment_fact(int(str(row["id"])))
        await _audit(staff, row, "billing.review.post")


async def _refund(staff: StaffActor, row: dict[str, object], session: CheckoutSession) -> None:
    """All Stripe took goes back (one key per payment: a double click refunds once); nothing
    was posted, so no ledger line, and the payment ends as returned."""
    try:
        await processor_for().refund(
            processor_ref=str(row["processor_ref"] or ""),
            amount_cents=session.amount_cents,
            idempotency_key=f"review-refund-{row['public_id']}",
        )
    except (ProcessorBusyError, ProcessorRetryError) as error:
        raise PaymentRefusedError("refund_busy") from error
    except ProcessorTimeoutError as error:
        raise PaymentRefusedError("processor_timeout") from error
    except ProcessorRefusedError as error:
        log.error("payment %s: Stripe refused the refund of a payment in review", row["public_id"])
        raise PaymentRefusedError("refund_refused") from error
    async with write_transaction():
        moved = await (
            Payment.update({Payment.status: "returned", Payment.completed_at: utcnow()})
            .where((Payment.id == row["id"]) & (Payment.status == "review"))
            .returning(Payment.id)
        )
        if moved:
            await _audit(staff, row, "billing.review.refund")


async def _audit(staff: StaffActor, row: dict[str, object], action: str) -> None:
    patient = row["patient"]
    await audit_staff(
        staff=staff,
        action=action,
        patient_id=int(str(patient)) if patient is not None else None,
        resource_type="Payment",
        resource_id=str(row["public_id"]),
    )
