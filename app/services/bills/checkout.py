"""A new card through Stripe Checkout (Stripe's hosted payment page), paid once.

"Pay with a new card" makes our payment row exactly as a card payment does (same limits,
same lock, the attempt's key), then a Checkout Session with that key as Stripe's
Idempotency-Key, so a double tap or a retry finds the same session; the person is sent to
its page. The payment stays `processing` until Stripe says otherwise: its webhook
(checkout.session.completed / expired / async_payment_failed), or the return page asking
once, which sends the person back to the session's page while it is still open. Leaving
Stripe's page by its back link (which carries a secret only Stripe's cancel_url has), or
"Cancel this payment" on the receipt, closes the session at Stripe first (so it can no
longer be paid), then marks our payment cancelled. Settling goes through payment_finish,
so whichever comes first wins and the ledger gets one line. Stripe's amount must match
ours, or nothing is posted: such a payment, like one paid at Stripe after ours ended, goes
to `review` (not holding the balance, its PaymentIntent kept for a refund) for the
billing office. A payment still processing after its session's lifetime (Stripe never
made the session, or no webhook came) is settled by the worker (checkout_payments_settle),
so it never holds the balance for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.access import PatientContext
from app.clinic import clinic_profile
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_insert
from app.services.bills.guest import Visitor, guest_audit, guest_statement
from app.services.bills.ledger import account_balance, account_of_patient, context_account
from app.services.bills.payments import (
    _PAYMENT_COLUMNS,
    Audit,
    Payer,
    PaymentRefusedError,
    PaymentResult,
    _card_keep,
    _record_audit,
    _result,
    amount_from_form,
    in_progress_cents,
    payer_key,
    payment_finish,
    payment_start,
)
from app.services.bills.processors import (
    ChargeOutcome,
    CheckoutSession,
    ProcessorBusyError,
    ProcessorRefusedError,
    ProcessorTimeoutError,
    processor_for,
)
from app.services.bills.review import UNSETTLED
from app.settings import get_settings
from app.tables import Payment

log = logging.getLogger(__name__)

# How long Stripe's page stays open (Stripe allows 30 minutes to 24 hours): a payment left
# there holds its amount "on its way" until then.
CHECKOUT_MINUTES = 60
# A payment still processing this long after its session's end is settled by the worker
# (a late webhook, or one Stripe retries, has had its time).
SETTLE_MARGIN_MINUTES = 30
# A twin tap finds Stripe still making the session (409): wait for its answer this often.
BUSY_TRIES = 6


@dataclass(frozen=True)
class CheckoutStep:
    result: PaymentResult
    # Stripe's page, when the payment waits for the card there.
    url: str = ""


def cancel_token(payment_public_id: str) -> str:
    """The secret only Stripe's cancel_url carries for this payment (an HMAC of its public
    id with the app's secret key), so a bare link from elsewhere cannot end it."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, payment_public_id.encode(), hashlib.sha256).hexdigest()


def cancel_token_ok(payment_public_id: str, token: str) -> None:
    """Raise NotFoundError unless `token` is this payment's cancel secret."""
    if not hmac.compare_digest(cancel_token(payment_public_id).encode(), token.encode()):
        raise NotFoundError("payment")


def checkout_urls(channel: str, payment_public_id: str) -> tuple[str, str]:
    """Where Stripe sends the person back: paid (Stripe fills in the session's id), and
    left without paying (with the payment's cancel secret). (The routes are in
    app/handlers/bills.py.)"""
    base = get_settings().base_url
    prefix = "/pay" if channel == "guest" else "/bills"
    back = f"{base}{prefix}/checkout/{payment_public_id}"
    return (
        f"{back}/done?session_id={{CHECKOUT_SESSION_ID}}",
        f"{back}/cancel?token={cancel_token(payment_public_id)}",
    )


def _description() -> str:
    """The one line Stripe shows: the clinic and "statement", nothing about the person."""
    return f"{clinic_profile().name} statement"


def _expires_at(created_at: Any) -> int:
    made = created_at if isinstance(created_at, datetime) else datetime.now(UTC)
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    return int((made + timedelta(minutes=CHECKOUT_MINUTES)).timestamp())


def _is_checkout(row: dict[str, Any]) -> bool:
    """A payment whose card is entered on Stripe's page (no card token of ours)."""
    return row["processor"] == "stripe" and not row["card_token"]


async def _row(payment_id: int) -> dict[str, Any]:
    rows = await Payment.select(*_PAYMENT_COLUMNS).where(Payment.id == payment_id)
    if not rows:
        raise NotFoundError("payment")
    return dict(rows[0])


async def checkout_start(
    payer: Payer, *, key: str, amount_cents: int, keep_card: bool
) -> CheckoutStep:
    """The payment for this attempt, and Stripe's page to pay it on (the same one for a
    twin tap)."""
    if get_settings().payment_processor != "stripe":
        raise PaymentRefusedError("no_card")
    row = await payment_start(
        payer, key=key, amount_cents=amount_cents, card_token="", keep_card=keep_card
    )
    return await checkout_go(payer, row)


async def _ask_session(row: dict[str, Any]) -> CheckoutSession:
    """Ask Stripe for the payment's session with the attempt's key (the same one every
    time it still remembers the key), waiting out a twin request still being answered."""
    success_url, cancel_url = checkout_urls(row["channel"], str(row["public_id"]))
    processor = processor_for()
    for attempt in range(BUSY_TRIES):
        try:
            return await processor.checkout(
                amount_cents=row["amount_cents"],
                currency=row["currency"],
                idempotency_key=row["idempotency_key"],
                payment_public_id=str(row["public_id"]),
                description=_description(),
                keep_card=bool(row["keep_card"]),
                success_url=success_url,
                cancel_url=cancel_url,
                expires_at=_expires_at(row["created_at"]),
            )
        except ProcessorBusyError:
            if attempt == BUSY_TRIES - 1:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise ProcessorBusyError(row["idempotency_key"])


async def _session_keep(row: dict[str, Any], session: CheckoutSession) -> dict[str, Any]:
    async with write_transaction():
        await Payment.update({Payment.checkout_session: session.session_id}).where(
            (Payment.id == row["id"]) & Payment.checkout_session.is_null()
        )
    return await _row(row["id"])


async def checkout_go(payer: Payer, row: dict[str, Any]) -> CheckoutStep:
    """Ask Stripe for the payment's session (the attempt's key makes it the same one every
    time) and keep its id."""
    if row["status"] != "processing" or not _is_checkout(row):
        return CheckoutStep(_result(row))
    try:
        session = await _ask_session(row)
    except (ProcessorBusyError, ProcessorTimeoutError):
        # Stripe may have made it: the payment stays processing, and "Check again" asks
        # with the same key (or the worker settles it after the session's lifetime).
        return CheckoutStep(_result(row))
    except ProcessorRefusedError as refused:
        log.warning(
            "Stripe refused a Checkout Session for payment %s: %s", row["public_id"], refused
        )
        outcome = ChargeOutcome(
            status="failed", processor_ref="", decline_reason="processing_error"
        )
        result, finished = await payment_finish(row["id"], outcome)
        if finished:
            async with write_transaction():
                await payer.audit("bills.payment.failed", result.public_id)
        return CheckoutStep(result)
    row = await _session_keep(row, session)
    if session.outcome is not None:  # already paid or expired: settle it, send nobody there
        result, _ = await checkout_settle(row["id"], session, audit=payer.audit)
        return CheckoutStep(result)
    return CheckoutStep(_result(row), url=session.url)


async def _audit(audit: Audit | None, action: str, public_id: str) -> None:
    async with write_transaction():
        if audit is not None:
            await audit(action, public_id)
        else:
            await audit_insert(action=action, resource_type="Payment", resource_id=public_id)


async def _to_review(
    row: dict[str, Any], outcome: ChargeOutcome, *, why: str, audit: Audit | None
) -> tuple[PaymentResult, bool]:
    """Money Stripe took that we will not post (its amount is not ours, or it came after
    our payment ended): the payment ends as `review`, which holds no balance, with its
    PaymentIntent id kept so the billing office can refund it. Never posted."""
    ended = ("processing", "cancelled", "failed", "declined", "action_required")
    async with write_transaction():
        moved = await (
            Payment.update(
                {
                    Payment.status: "review",
                    Payment.processor_ref: outcome.processor_ref or None,
                    Payment.decline_reason: why,
                    Payment.card_brand: outcome.card_brand,
                    Payment.card_last4: outcome.card_last4,
                    Payment.completed_at: utcnow(),
                }
            )
            .where((Payment.id == row["id"]) & Payment.status.is_in(list(ended)))
            .returning(Payment.id)
        )
    if moved:
        await _audit(audit, "bills.payment.review", str(row["public_id"]))
    return _result(await _row(row["id"])), bool(moved)


async def checkout_settle(
    payment_id: int, session: CheckoutSession, *, audit: Audit | None
) -> tuple[PaymentResult, bool]:
    """Finish a payment with what Stripe says of its session, once. Posted only when the
    session is this payment's and its amount and currency are the payment's."""
    row = await _row(payment_id)
    public_id = str(row["public_id"])
    if session.outcome is None:
        return _result(row), False
    if row["checkout_session"] != session.session_id or session.payment_public_id != public_id:
        log.error("a Checkout Session that is not payment %s's was ignored", public_id)
        return _result(row), False
    outcome = session.outcome
    if outcome.status == "succeeded" and (
        session.amount_cents != row["amount_cents"] or session.currency != row["currency"]
    ):
        log.error(
            "payment %s: Stripe's amount (%s %s) is not ours (%s %s): not posted, for review",
            public_id,
            session.amount_cents,
            session.currency,
            row["amount_cents"],
            row["currency"],
        )
        return await _to_review(row, outcome, why="amount_mismatch", audit=audit)
    result, finished = await payment_finish(payment_id, outcome)
    if finished:
        await _audit(audit, f"bills.payment.{result.status}", public_id)
        if (
            result.status == "succeeded"
            and row["keep_card"]
            and row["paid_by_account"] is not None
            and session.card_token
        ):
            await _card_keep(row["paid_by_account"], session.card_token, result)
    elif outcome.status == "succeeded" and result.status not in (
        "succeeded",
        *UNSETTLED,
        "returned",
    ):
        # Paid at Stripe after our payment ended otherwise: the billing office must see it
        # (unless it has already: posted it, is giving it back, or gave it back).
        log.error("payment %s was paid at Stripe after it ended as %s", public_id, result.status)
        return await _to_review(row, outcome, why="paid_after_end", audit=audit)
    return result, finished


async def checkout_webhook_settle(payment_id: int, session: CheckoutSession) -> bool:
    """A webhook's news of a session. A paid one is asked about once more (for the card
    paid with, to keep it if the person asked); the event's own word settles it if Stripe
    does not answer."""
    if session.outcome is not None and session.outcome.status == "succeeded":
        try:
            fuller = await processor_for().checkout_status(session.session_id)
        except (ProcessorBusyError, ProcessorTimeoutError, ProcessorRefusedError):
            fuller = None
        if fuller is not None and fuller.outcome and fuller.outcome.status == "succeeded":
            session = fuller
    _, finished = await checkout_settle(payment_id, session, audit=None)
    return finished


async def owned_checkout(
    public_id: str,
    *,
    account_id: int,
    paid_by_account: int | None = None,
    statement_id: int | None = None,
) -> dict[str, Any]:
    """A Checkout payment as only the one who started it may see it: the signed-in
    account that paid, or the guest pass of the statement it was paid from."""
    rows = await Payment.select(*_PAYMENT_COLUMNS).where(
        (Payment.public_id == public_id) & (Payment.account == account_id)
    )
    if not rows:
        raise NotFoundError("payment")
    row = dict(rows[0])
    if paid_by_account is not None:
        mine = row["paid_by_account"] == paid_by_account
    else:
        mine = (
            statement_id is not None
            and row["paid_by_account"] is None
            and row["channel"] == "guest"
            and row["statement"] == statement_id
        )
    if not mine or not _is_checkout(row):
        raise NotFoundError("payment")
    return row


def _paid_by(row: dict[str, Any], payer: Payer) -> bool:
    """Whether `payer` started this payment (only they are sent to its page)."""
    if payer.paid_by_account is not None:
        return bool(row["paid_by_account"] == payer.paid_by_account)
    return (
        payer.statement_id is not None
        and row["paid_by_account"] is None
        and row["channel"] == "guest"
        and row["statement"] == payer.statement_id
    )


async def checkout_returned(row: dict[str, Any], payer: Payer) -> PaymentResult:
    """Back from Stripe's page, or "Check again": the payment as it stands, after asking
    Stripe once about a payment still processing (the webhook may not be here yet). While
    its session is open, the result carries the session's page for its payer to go on to."""
    if row["status"] != "processing":
        return _result(row)
    if not row["checkout_session"]:
        step = await checkout_go(payer, row)
        url = step.url if _paid_by(row, payer) else ""
        return replace(step.result, url=url)
    try:
        session = await processor_for().checkout_status(row["checkout_session"])
    except (ProcessorBusyError, ProcessorTimeoutError, ProcessorRefusedError):
        return _result(row)
    if session.outcome is None and session.status == "open" and _paid_by(row, payer):
        return replace(_result(row), url=session.url)
    result, _ = await checkout_settle(row["id"], session, audit=payer.audit)
    return result


async def checkout_cancelled(row: dict[str, Any], payer: Payer) -> PaymentResult:
    """Left Stripe's page without paying, or "Cancel this payment": close the session at
    Stripe (so it can no longer be paid; asking for it first with the attempt's key when
    we never heard its id), then end our payment as it says (cancelled, or paid if it got
    there first)."""
    if row["status"] != "processing":
        return _result(row)
    if not row["checkout_session"]:
        step = await checkout_go(payer, row)
        row = await _row(row["id"])
        if step.result.status != "processing" or not row["checkout_session"]:
            return step.result
    try:
        session = await processor_for().checkout_expire(row["checkout_session"])
    except (ProcessorBusyError, ProcessorTimeoutError, ProcessorRefusedError):
        return _result(row)  # still processing; the session's own expiry closes it
    result, _ = await checkout_settle(row["id"], session, audit=payer.audit)
    return result


# The worker ------------------------------------------------------------------------------


async def checkout_payments_settle() -> int:
    """The worker's minute: Checkout payments still processing well after their session's
    lifetime (Stripe never made the session, or no webhook came) are settled, so none holds
    the balance for good. Stripe is asked again with the attempt's key (or about the
    session we know): a paid session is posted once, an open one is expired, an expired
    one is not charged; a refusal (too late to make one) or no answer at all ends the
    payment as not charged (should Stripe later say it was paid, it goes to review). How
    many were settled."""
    cutoff = utcnow() - timedelta(minutes=CHECKOUT_MINUTES + SETTLE_MARGIN_MINUTES)
    rows = await Payment.select(*_PAYMENT_COLUMNS).where(
        (Payment.status == "processing")
        & (Payment.processor == "stripe")
        & (Payment.card_token == "")
        & (Payment.created_at < cutoff)
    )
    settled = 0
    for row in rows:
        try:
            if await _late_settle(dict(row)):
                settled += 1
        except Exception:  # the others still get their turn; this one next minute
            log.exception("settling Checkout payment %s failed", row["public_id"])
    return settled


async def _late_settle(row: dict[str, Any]) -> bool:
    processor = processor_for()
    session: CheckoutSession | None = None
    try:
        if row["checkout_session"]:
            session = await processor.checkout_status(row["checkout_session"])
        else:
            session = await _ask_session(row)
            row = await _session_keep(row, session)
            if row["checkout_session"] != session.session_id:
                session = await processor.checkout_status(row["checkout_session"])
        if session.outcome is None and session.status == "open":
            session = await processor.checkout_expire(session.session_id)
    except (ProcessorBusyError, ProcessorTimeoutError, ProcessorRefusedError) as error:
        log.warning(
            "Checkout payment %s: Stripe gave no session (%s): ended, not charged",
            row["public_id"],
            type(error).__name__,
        )
        session = None
    if session is not None and session.outcome is not None:
        _, finished = await checkout_settle(row["id"], session, audit=None)
        return finished
    outcome = ChargeOutcome(status="failed", processor_ref="", decline_reason="processing_error")
    result, finished = await payment_finish(row["id"], outcome)
    if finished:
        await _audit(None, "bills.payment.failed", result.public_id)
    return finished


# The portal (signed in) ------------------------------------------------------------------


async def _portal_payer(context: PatientContext) -> Payer:
    account = await context_account(context)
    return Payer(
        account_id=account.id,
        channel="portal",
        audit=_record_audit(context),
        paid_by_account=context.actor.account_id,
        patient_id=context.patient.id,
        ip=context.actor.ip,
    )


async def bill_checkout(
    context: PatientContext, *, key: str, choice: str, other: str, save_card: bool
) -> CheckoutStep:
    """Pay the record's account with a new card on Stripe's page."""
    context.require("billing")
    if await account_of_patient(context.patient.id) is None:
        raise PaymentRefusedError("nothing_owed")
    attempt_key = payer_key(key)
    payer = await _portal_payer(context)
    payable = await account_balance(payer.account_id) - await in_progress_cents(payer.account_id)
    return await checkout_start(
        payer,
        key=attempt_key,
        amount_cents=amount_from_form(choice, other, payable),
        keep_card=save_card and context.actor.account_id is not None,
    )


async def _portal_checkout(context: PatientContext, public_id: str) -> tuple[dict[str, Any], Payer]:
    payer = await _portal_payer(context)
    if payer.paid_by_account is None:
        raise NotFoundError("payment")
    row = await owned_checkout(
        public_id, account_id=payer.account_id, paid_by_account=payer.paid_by_account
    )
    return row, payer


async def bill_checkout_returned(context: PatientContext, public_id: str) -> PaymentResult:
    row, payer = await _portal_checkout(context, public_id)
    return await checkout_returned(row, payer)


async def bill_checkout_cancelled(context: PatientContext, public_id: str) -> PaymentResult:
    """ "Cancel this payment" on the receipt (a CSRF-checked form of the payer's)."""
    row, payer = await _portal_checkout(context, public_id)
    return await checkout_cancelled(row, payer)


async def bill_checkout_left(context: PatientContext, public_id: str, token: str) -> PaymentResult:
    """Stripe's back link: only with the payment's cancel secret."""
    row, payer = await _portal_checkout(context, public_id)
    cancel_token_ok(public_id, token)
    return await checkout_cancelled(row, payer)


# Guest pay (a statement's pass) ----------------------------------------------------------


async def _guest_payer(statement_public_id: str, visitor: Visitor) -> Payer:
    statement = await guest_statement(statement_public_id)
    return Payer(
        account_id=statement.account.id,
        channel="guest",
        audit=guest_audit(visitor, statement),
        statement_id=statement.statement_id,
        ip=visitor.ip,
    )


async def guest_checkout(
    statement_public_id: str, *, key: str, choice: str, other: str, visitor: Visitor
) -> CheckoutStep:
    attempt_key = payer_key(key)
    payer = await _guest_payer(statement_public_id, visitor)
    payable = await account_balance(payer.account_id) - await in_progress_cents(payer.account_id)
    return await checkout_start(
        payer,
        key=attempt_key,
        amount_cents=amount_from_form(choice, other, payable),
        keep_card=False,  # nowhere to keep it without an account
    )


async def _guest_checkout(
    statement_public_id: str, public_id: str, visitor: Visitor
) -> tuple[dict[str, Any], Payer]:
    payer = await _guest_payer(statement_public_id, visitor)
    row = await owned_checkout(
        public_id, account_id=payer.account_id, statement_id=payer.statement_id
    )
    return row, payer


async def guest_checkout_returned(
    statement_public_id: str, public_id: str, visitor: Visitor
) -> PaymentResult:
    row, payer = await _guest_checkout(statement_public_id, public_id, visitor)
    return await checkout_returned(row, payer)


async def guest_checkout_cancelled(
    statement_public_id: str, public_id: str, visitor: Visitor
) -> PaymentResult:
    row, payer = await _guest_checkout(statement_public_id, public_id, visitor)
    return await checkout_cancelled(row, payer)


async def guest_checkout_left(
    statement_public_id: str, public_id: str, token: str, visitor: Visitor
) -> PaymentResult:
    row, payer = await _guest_checkout(statement_public_id, public_id, visitor)
    cancel_token_ok(public_id, token)
    return await checkout_cancelled(row, payer)
