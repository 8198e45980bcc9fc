"""Settling a payment in review: money Stripe took that the portal did not post (Stripe's
amount was not ours, or it came after our payment had ended). The billing office either
posts it to the bill, when Stripe took exactly our amount, has given none of it back, and
the account still owes it, or gives back at Stripe whatever is left of it. Either way the
answer comes from Stripe as it is now, not from what the page showed.

A refund claims the payment (`returning`) before it asks Stripe, so nothing can post it
while the refund is on its way, and a refund whose answer was lost is asked again (its key
names what was already given back, so Stripe answers the same question the same way) until
Stripe shows it all given back (`returned`)."""

from __future__ import annotations

import logging

from app.access import StaffActor
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_staff
from app.services.bills.ledger import account_balance
from app.services.bills.payments import (
    PaymentRefusedError,
    account_lock,
    in_progress_cents,
    payment_fact,
)
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

# A payment the billing office must settle: in review, or being given back.
UNSETTLED = ("review", "returning")


async def _in_review(payment_public_id: str) -> dict[str, object]:
    rows = await Payment.raw(
        """SELECT y.id, y.public_id, y.account, y.amount_cents, y.currency, y.status,
                  y.processor_ref, y.checkout_session, ba.public_id AS account_public_id,
                  COALESCE(y.patient, ba.guarantor) AS patient
           FROM payment y JOIN billing_account ba ON ba.id = y.account
           WHERE y.public_id = {}""",
        payment_public_id,
    )
    if not rows:
        raise NotFoundError("payment")
    if rows[0]["status"] not in UNSETTLED or not rows[0]["checkout_session"]:
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
    """Post a payment in review, or give back what is left of it at Stripe. The account's
    public id."""
    if action not in ("post", "refund"):
        raise PaymentRefusedError("review_unknown")
    row = await _in_review(payment_public_id)
    session = await _stripe_now(row)
    if action == "post":
        await _post(staff, row, session)
    else:
        await _refund(staff, row, session)
    return str(row["account_public_id"])


async def _post(staff: StaffActor, row: dict[str, object], session: CheckoutSession) -> None:
    """Onto the bill as a payment: only from review (not while a refund is on its way), only
    Stripe's exact amount with nothing of it given back, and never past what is owed once
    the payments still on their way are counted (money over it goes back instead)."""
    amount = int(str(row["amount_cents"]))
    if row["status"] != "review":
        raise PaymentRefusedError("review_settled")
    if session.refunded_cents:
        raise PaymentRefusedError("review_given_back")
    if session.amount_cents != amount or session.currency.lower() != str(row["currency"]).lower():
        raise PaymentRefusedError("review_amount_differs")
    account_id = int(str(row["account"]))
    async with write_transaction():
        await lock_names(account_lock(account_id))
        owed = await account_balance(account_id) - await in_progress_cents(account_id)
        if amount > owed:
            raise PaymentRefusedError("review_more_than_owed")
        moved = await (
            Payment.update({Payment.status: "succeeded", Payment.completed_at: utcnow()})
            .where((Payment.id == row["id"]) & (Payment.status == "review"))
            .returning(Payment.id)
        )
        if not moved:
            raise PaymentRefusedError("review_settled")  # a twin tap, or a refund, came first
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
    """Give back what is left of what Stripe took. Nothing was posted, so no ledger line;
    the payment ends as returned once Stripe has given it all back."""
    async with write_transaction():
        claimed = await (
            Payment.update({Payment.status: "returning"})
            .where((Payment.id == row["id"]) & Payment.status.is_in(list(UNSETTLED)))
            .returning(Payment.id)
        )
        if not claimed:
            raise PaymentRefusedError("review_settled")  # posted (or returned) meanwhile
        if row["status"] == "review":
            await _audit(staff, row, "billing.review.refund.start")
    left = session.amount_cents - session.refunded_cents
    if left > 0:
        try:
            await processor_for().refund(
                processor_ref=str(row["processor_ref"] or ""),
                amount_cents=left,
                # What was given back so far is in the key: a retry after a lost answer
                # asks the same question, and one after a refund elsewhere a new one.
                idempotency_key=f"review-refund-{row['public_id']}-{session.refunded_cents}",
            )
        except (ProcessorBusyError, ProcessorRetryError) as error:
            raise PaymentRefusedError("refund_busy") from error
        except ProcessorTimeoutError as error:
            raise PaymentRefusedError("refund_unanswered") from error
        except ProcessorRefusedError as error:
            # Stripe made no refund. If all of it is given back by now (a twin tap's refund,
            # or one in Stripe's dashboard), it is returned all the same; otherwise back to
            # review (what Stripe gave back earlier still keeps it from being posted).
            now = await _stripe_now(row)
            if now.amount_cents - now.refunded_cents > 0:
                log.error(
                    "payment %s: Stripe refused the refund of a payment in review",
                    row["public_id"],
                )
                await Payment.update({Payment.status: "review"}).where(
                    (Payment.id == row["id"]) & (Payment.status == "returning")
                )
                raise PaymentRefusedError("refund_refused") from error
    async with write_transaction():
        # From review too: a twin tap refused by Stripe may have put it back there while
        # this refund was being made.
        moved = await (
            Payment.update({Payment.status: "returned", Payment.completed_at: utcnow()})
            .where((Payment.id == row["id"]) & Payment.status.is_in(list(UNSETTLED)))
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
