"""Paying a bill, charged exactly once.

The pay page makes an idempotency key for the attempt; the form carries it back. A payment
row is made with that key (unique) under a lock on the account, so a double tap finds the
row its twin made, and a second device finds the balance already on its way. The processor
gets the same key, so asking again after a time-out never charges twice. Only a payment
still `processing` can be finished (one conditional update), and a payment's ledger line is
unique, so the redirect, a retry and a webhook (twice, or before the redirect) end in one
charge and one ledger entry. A declined card changes nothing on the ledger.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from app.access import PatientContext
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_insert, audit_record
from app.services.bills.ledger import (
    AccountRef,
    account_balance,
    account_of_patient,
    context_account,
)
from app.services.bills.processors import (
    ChargeOutcome,
    ProcessorBusyError,
    ProcessorTimeoutError,
    processor_for,
)
from app.services.bills.processors.demo import demo_card_token
from app.services.facts import record_fact
from app.services.rate_limit import RateRule, rate_key, rate_limit_count, rate_limit_over
from app.settings import get_settings
from app.tables import LedgerEntry, Payment, SavedCard

log = logging.getLogger(__name__)

# A processor's PaymentMethod token as its hosted form makes it (Stripe: pm_...).
PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,60}")

# The attempt key a pay form carries back (new_attempt_key makes 32 characters). Stored
# with PAYER_KEY_PREFIX, so no payer can choose a key the system uses (plan-..., refund-...).
ATTEMPT_KEY = re.compile(r"[A-Za-z0-9_-]{32,60}")
PAYER_KEY_PREFIX = "att-"

# Card testing: a payer (a signed-in account, or a statement's guest pass) and an address
# get a few declined cards an hour, then are asked to wait or call the clinic. An address
# is allowed more: a family or the clinic's Wi-Fi may share one.
DECLINES_PER_PAYER = RateRule("pay_declines_payer", 5, timedelta(hours=1))
DECLINES_PER_IP = RateRule("pay_declines_ip", 10, timedelta(hours=1))

# The smallest payment taken, unless it pays off what is left.
MINIMUM_CENTS = 100
# The largest amount a form may name, in dollars (anything more is a typo or an attack).
MAXIMUM_AMOUNT = Decimal(10**7)
# Why a payment was not taken before any card was tried (worded in bills/_words.html).
REFUSALS = (
    "nothing_owed",
    "in_progress",
    "too_much",
    "too_little",
    "unreadable_amount",
    "no_card",
    "not_a_test_card",
    "too_many_declines",
)


class PaymentRefusedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CardLine:
    public_id: str
    brand: str
    last4: str


@dataclass(frozen=True)
class PayPage:
    balance_cents: int
    # Already on its way (a payment still processing) and so not payable again now.
    in_progress_cents: int
    key: str
    saved_cards: list[CardLine]
    # The demo processor's own card form (test numbers only): shown only with it.
    demo_form: bool
    # A new card on Stripe Checkout's page: offered only when Stripe takes the cards.
    checkout: bool = False

    @property
    def payable_cents(self) -> int:
        return max(self.balance_cents - self.in_progress_cents, 0)


@dataclass(frozen=True)
class PaymentResult:
    public_id: str
    status: str
    amount_cents: int
    decline_reason: str = ""
    card_brand: str = ""
    card_last4: str = ""
    # Stripe Checkout's page, while the payment waits for its payer's card there.
    url: str = ""


# An audit row for this payer: (action, the payment's public id).
Audit = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class Payer:
    account_id: int
    channel: str  # portal | guest | plan | staff
    audit: Audit
    paid_by_account: int | None = None
    patient_id: int | None = None
    statement_id: int | None = None
    # Where the attempt came from (counted for card testing; "" for the plan worker).
    ip: str = ""

    def decline_limits(self) -> list[tuple[RateRule, str]]:
        """The counters this payer's declined cards go on (none for the plan worker)."""
        limits: list[tuple[RateRule, str]] = []
        if self.paid_by_account is not None:
            limits.append((DECLINES_PER_PAYER, f"account:{self.paid_by_account}"))
        elif self.statement_id is not None:
            limits.append((DECLINES_PER_PAYER, f"statement:{self.statement_id}"))
        if self.ip:
            limits.append((DECLINES_PER_IP, rate_key(self.ip)))
        return limits


def new_attempt_key() -> str:
    """One payment attempt's idempotency key, made when the pay page is shown."""
    return secrets.token_urlsafe(24)


def payer_key(key: str) -> str:
    """The idempotency key for a payer's attempt from a form's key: only a key like the
    ones the pay page makes, in a namespace of its own."""
    if not ATTEMPT_KEY.fullmatch(key):
        raise PaymentRefusedError("no_card")
    return PAYER_KEY_PREFIX + key


# Cents at the end: a mark and one or two digits ("25.50", "25,50").
CENTS = re.compile(r"[.,]([0-9]{1,2})$")
LONGEST_AMOUNT = 20


def typed_amount(text: str) -> Decimal:
    """An amount as people write it in English or Spanish, read the same whichever language
    the page was in: "1,234.50" and "1.234,50" are both $1,234.50, and "1,50" is $1.50 (a
    mark and one or two digits are cents). "1,500" alone is refused: $1,500 to one reader,
    $1.50 to the other, and a payment must never guess."""
    text = re.sub(r"USD|US|\$|\s", "", text.strip(), flags=re.IGNORECASE)
    if not text or len(text) > LONGEST_AMOUNT or not re.fullmatch(r"[0-9.,]+", text):
        raise PaymentRefusedError("unreadable_amount")
    whole, cents = text, "0"
    tail = CENTS.search(text)
    if tail:
        whole, cents = text[: tail.start()], tail.group(1)
    groups = re.split(r"[.,]", whole)
    marks = set(re.findall(r"[.,]", whole))
    if marks:
        grouped = 1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])
        one_group_no_cents = len(groups) == 2 and not tail
        mixed = len(marks) > 1 or (tail is not None and text[tail.start()] in marks)
        if not grouped or one_group_no_cents or mixed:
            raise PaymentRefusedError("unreadable_amount")
    return Decimal(f"{''.join(groups) or '0'}.{cents}")


def amount_from_form(choice: str, other: str, payable_cents: int) -> int:
    """The amount the person chose: the whole balance, or another amount they typed."""
    if choice != "other":
        return payable_cents
    amount = typed_amount(other)
    if amount > MAXIMUM_AMOUNT:  # nothing anyone pays is near ten million dollars
        raise PaymentRefusedError("unreadable_amount")
    return int(amount * 100)


async def in_progress_cents(account_id: int) -> int:
    """What is on its way (payments still processing): not payable again until they end.
    (A payment in `review` holds nothing: it was never posted.)"""
    rows = await Payment.raw(
        "SELECT COALESCE(SUM(amount_cents), 0) AS total FROM payment "
        "WHERE account = {} AND status = 'processing'",
        account_id,
    )
    return int(rows[0]["total"])


async def saved_cards_of(account_id: int) -> list[CardLine]:
    rows = await SavedCard.select(SavedCard.public_id, SavedCard.brand, SavedCard.last4).where(
        (SavedCard.account == account_id)
        & (SavedCard.processor == get_settings().payment_processor)
    )
    return [CardLine(str(row["public_id"]), row["brand"], row["last4"]) for row in rows]


async def account_pay_page(account_id: int, *, signed_in_account: int | None) -> PayPage:
    return PayPage(
        balance_cents=await account_balance(account_id),
        in_progress_cents=await in_progress_cents(account_id),
        key=new_attempt_key(),
        saved_cards=await saved_cards_of(signed_in_account) if signed_in_account else [],
        demo_form=get_settings().payment_processor == "demo",
        checkout=get_settings().payment_processor == "stripe",
    )


async def pay_page(context: PatientContext) -> PayPage:
    """The pay page: a record without bills yet has nothing to pay."""
    context.require("billing")
    account = await account_of_patient(context.patient.id)
    if account is None:
        return PayPage(
            balance_cents=0, in_progress_cents=0, key="", saved_cards=[], demo_form=False
        )
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="bills.pay.view",
            resource_type="Account",
            resource_id=account.public_id,
        )
        return await account_pay_page(account.id, signed_in_account=context.actor.account_id)


_PAYMENT_COLUMNS = (
    Payment.id,
    Payment.public_id,
    Payment.account,
    Payment.amount_cents,
    Payment.status,
    Payment.decline_reason,
    Payment.card_brand,
    Payment.card_last4,
    Payment.card_token,
    Payment.idempotency_key,
    Payment.currency,
    Payment.channel,
    Payment.processor,
    Payment.checkout_session,
    Payment.keep_card,
    Payment.paid_by_account,
    Payment.statement,
    Payment.created_at,
)


def _result(row: dict[str, Any]) -> PaymentResult:
    return PaymentResult(
        public_id=str(row["public_id"]),
        status=row["status"],
        amount_cents=row["amount_cents"],
        decline_reason=row["decline_reason"],
        card_brand=row["card_brand"],
        card_last4=row["card_last4"],
    )


def account_lock(account_id: int) -> str:
    return f"bills-account:{account_id}"


async def payment_start(
    payer: Payer, *, key: str, amount_cents: int, card_token: str, keep_card: bool = False
) -> dict[str, Any]:
    """The payment for this key: the one a twin tap already made, or a new one, if the
    account owes that much and no other payment is on its way for it."""
    async with write_transaction():
        await lock_names(account_lock(payer.account_id))
        existing = await Payment.select(*_PAYMENT_COLUMNS).where(Payment.idempotency_key == key)
        if existing:
            if existing[0]["account"] != payer.account_id:
                raise NotFoundError("payment")
            return dict(existing[0])
        for rule, limit_key in payer.decline_limits():
            if await rate_limit_over(rule, limit_key):
                raise PaymentRefusedError("too_many_declines")
        balance = await account_balance(payer.account_id)
        pending = await in_progress_cents(payer.account_id)
        payable = balance - pending
        if payable <= 0:
            raise PaymentRefusedError("in_progress" if pending else "nothing_owed")
        if amount_cents > payable:
            raise PaymentRefusedError("too_much")
        if amount_cents <= 0 or (amount_cents < MINIMUM_CENTS and amount_cents != payable):
            raise PaymentRefusedError("too_little")
        payment = Payment(
            account=payer.account_id,
            idempotency_key=key,
            amount_cents=amount_cents,
            currency=get_settings().currency,
            channel=payer.channel,
            processor=get_settings().payment_processor,
            card_token=card_token,
            keep_card=keep_card,
            paid_by_account=payer.paid_by_account,
            patient=payer.patient_id,
            statement=payer.statement_id,
        )
        await Payment.insert(payment)
        await payer.audit("bills.payment.start", str(payment.public_id))
        rows = await Payment.select(*_PAYMENT_COLUMNS).where(Payment.id == payment.id)
        return dict(rows[0])


async def payment_finish(payment_id: int, outcome: ChargeOutcome) -> tuple[PaymentResult, bool]:
    """Finish a payment still processing with the processor's answer, once: its ledger line
    if it succeeded. (The result, and whether this call was the one that finished it.)"""
    async with write_transaction():
        current = await Payment.select(Payment.account).where(Payment.id == payment_id)
        if not current:
            raise NotFoundError("payment")
        await lock_names(account_lock(current[0]["account"]))
        finished = await (
            Payment.update(
                {
                    Payment.status: outcome.status,
                    Payment.processor_ref: outcome.processor_ref or None,
                    Payment.decline_reason: outcome.decline_reason,
                    Payment.card_brand: outcome.card_brand,
                    Payment.card_last4: outcome.card_last4,
                    Payment.completed_at: utcnow(),
                }
            )
            .where((Payment.id == payment_id) & (Payment.status == "processing"))
            .returning(Payment.id)
        )
        row = dict((await Payment.select(*_PAYMENT_COLUMNS).where(Payment.id == payment_id))[0])
        if finished and outcome.status == "succeeded":
            await LedgerEntry.insert(
                LedgerEntry(
                    account=row["account"],
                    kind="payment",
                    amount_cents=row["amount_cents"],
                    payment=payment_id,
                )
            )
            await payment_fact(payment_id)
        return _result(row), bool(finished)


# How a payment came, as the dashboard counts it: paying in the portal, by guest pay or by a
# plan's automatic charge is "through the portal"; a payment staff take is not.
_FACT_CHANNELS = {"portal": "portal", "guest": "portal", "plan": "portal", "staff": "staff"}


async def payment_fact(payment_id: int) -> None:
    """The clinic dashboard's record of a payment (app/services/facts.py), on the guarantor's
    record, in the payment's own transaction."""
    row = (
        await Payment.select(Payment.channel, Payment.amount_cents, Payment.account.guarantor)
        .where(Payment.id == payment_id)
        .first()
    )
    if row is None:
        return
    await record_fact(
        "payment",
        row["account.guarantor"],
        channel=_FACT_CHANNELS.get(row["channel"], str(row["channel"])),
        value=row["amount_cents"] / 100,
    )


async def charge_once(
    payer: Payer, *, key: str, amount_cents: int, card_token: str
) -> tuple[PaymentResult, bool]:
    row = await payment_start(payer, key=key, amount_cents=amount_cents, card_token=card_token)
    if row["status"] != "processing":
        return _result(row), False
    try:
        outcome = await processor_for().charge(
            amount_cents=row["amount_cents"],
            currency=get_settings().currency,
            idempotency_key=row["idempotency_key"],
            card_token=row["card_token"],
            payment_public_id=str(row["public_id"]),
            # Only a plan charges without the person there.
            off_session=payer.channel == "plan",
        )
    except (ProcessorTimeoutError, ProcessorBusyError):
        return _result(row), False  # still processing: a retry or the webhook finishes it
    except Exception:
        # Anything else the processor did is no charge we know of: the payment must not
        # stay `processing` (that would hold the whole balance "in progress" for good).
        log.exception("charge failed unexpectedly for payment %s", row["public_id"])
        outcome = ChargeOutcome(
            status="failed", processor_ref="", decline_reason="processing_error"
        )
    result, finished = await payment_finish(row["id"], outcome)
    if finished:
        async with write_transaction():
            await payer.audit(f"bills.payment.{outcome.status}", result.public_id)
        if outcome.status in ("declined", "failed"):
            for rule, limit_key in payer.decline_limits():
                await rate_limit_count(rule, limit_key)
    return result, finished


async def card_token_for(
    signed_in_account: int | None, *, saved_card: str, number: str, payment_method: str
) -> str:
    """The processor's token for the card chosen: a saved one, the demo form's test number
    (turned into its token here, the number going no further), or the token the
    processor's hosted form made."""
    if saved_card and signed_in_account is not None:
        token = await SavedCard.select(SavedCard.token).where(
            (SavedCard.public_id == saved_card)
            & (SavedCard.account == signed_in_account)
            & (SavedCard.processor == get_settings().payment_processor)
        )
        if token:
            return str(token[0]["token"])
    if number.strip() and get_settings().payment_processor == "demo":
        demo_token = demo_card_token(number)
        if demo_token is None:
            raise PaymentRefusedError("not_a_test_card")
        return demo_token
    if PAYMENT_METHOD.fullmatch(payment_method) and get_settings().payment_processor != "demo":
        return payment_method
    raise PaymentRefusedError("no_card")


def _record_audit(context: PatientContext) -> Audit:
    async def audit(action: str, resource_id: str) -> None:
        await audit_record(
            actor=context.actor,
            context=context,
            action=action,
            resource_type="Payment",
            resource_id=resource_id,
        )

    return audit


async def bill_pay(
    context: PatientContext,
    *,
    key: str,
    choice: str,
    other: str,
    saved_card: str = "",
    number: str = "",
    payment_method: str = "",
    save_card: bool = False,
) -> PaymentResult:
    """Pay the record's account from the portal: the whole balance or another amount."""
    context.require("billing")
    found = await account_of_patient(context.patient.id)
    if found is None:
        raise PaymentRefusedError("nothing_owed")
    account: AccountRef = found
    attempt_key = payer_key(key)
    token = await card_token_for(
        context.actor.account_id,
        saved_card=saved_card,
        number=number,
        payment_method=payment_method,
    )
    payable = await account_balance(account.id) - await in_progress_cents(account.id)
    amount = amount_from_form(choice, other, payable)
    payer = Payer(
        account_id=account.id,
        channel="portal",
        audit=_record_audit(context),
        paid_by_account=context.actor.account_id,
        patient_id=context.patient.id,
        ip=context.actor.ip,
    )
    result, finished = await charge_once(
        payer, key=attempt_key, amount_cents=amount, card_token=token
    )
    if finished and result.status == "succeeded" and save_card and not saved_card:
        await _card_keep(context.actor.account_id, token, result)
    return result


async def _card_keep(account_id: int, token: str, result: PaymentResult) -> None:
    """Keep a card for next time (once per account and card)."""
    async with write_transaction():
        processor = get_settings().payment_processor
        if await SavedCard.exists().where(
            (SavedCard.account == account_id)
            & (SavedCard.token == token)
            & (SavedCard.processor == processor)
        ):
            return
        await SavedCard.insert(
            SavedCard(
                account=account_id,
                processor=processor,
                token=token,
                brand=result.card_brand,
                last4=result.card_last4,
            )
        )


async def payment_check(payment_id: int, payer: Payer) -> PaymentResult:
    """Ask the processor again about a payment still processing (after a time-out), with
    its own key: the answer it already gave, never a second charge."""
    rows = await Payment.select(*_PAYMENT_COLUMNS).where(Payment.id == payment_id)
    row = dict(rows[0])
    if row["status"] != "processing":
        return _result(row)
    if row["processor"] == "stripe" and not row["card_token"]:
        # Its card is entered on Stripe Checkout's page: ask about the session instead.
        from app.services.bills.checkout import checkout_returned

        return await checkout_returned(row, payer)
    result, _ = await charge_once(
        payer,
        key=row["idempotency_key"],
        amount_cents=row["amount_cents"],
        card_token=row["card_token"],
    )
    return result


@dataclass(frozen=True)
class Receipt:
    public_id: str
    amount_cents: int
    status: str
    decline_reason: str
    card_brand: str
    card_last4: str
    channel: str
    created_at: Any
    completed_at: Any
    guarantor_name: str
    account_public_id: str
    balance_after_cents: int
    # Its card is entered on Stripe Checkout's page, and the one viewing it started it
    # (while processing, its receipt offers to go on to that page, or to cancel).
    checkout: bool = False


async def receipt_of(
    account: AccountRef,
    payment_public_id: str,
    *,
    paid_by_account: int | None = None,
    statement_id: int | None = None,
) -> tuple[Receipt, int]:
    """A payment of this account, as its receipt shows it (and its row id). The card shows
    only on a payment made by `paid_by_account` (signed in) or a guest's on
    `statement_id`."""
    rows = await Payment.select(
        Payment.id,
        Payment.public_id,
        Payment.amount_cents,
        Payment.status,
        Payment.decline_reason,
        Payment.card_brand,
        Payment.card_last4,
        Payment.channel,
        Payment.created_at,
        Payment.completed_at,
        Payment.paid_by_account,
        Payment.statement,
        Payment.processor,
        Payment.card_token,
    ).where((Payment.public_id == payment_public_id) & (Payment.account == account.id))
    if not rows:
        raise NotFoundError("payment")
    row = rows[0]
    card_shown = (paid_by_account is not None and row["paid_by_account"] == paid_by_account) or (
        statement_id is not None
        and row["paid_by_account"] is None
        and row["channel"] == "guest"
        and row["statement"] == statement_id
    )
    return (
        Receipt(
            public_id=str(row["public_id"]),
            amount_cents=row["amount_cents"],
            status=row["status"],
            decline_reason=row["decline_reason"],
            card_brand=row["card_brand"] if card_shown else "",
            card_last4=row["card_last4"] if card_shown else "",
            channel=row["channel"],
            created_at=row["created_at"],
            completed_at=row["completed_at"],
            guarantor_name=account.guarantor_name,
            account_public_id=account.public_id,
            balance_after_cents=await account_balance(account.id),
            checkout=card_shown and row["processor"] == "stripe" and not row["card_token"],
        ),
        row["id"],
    )


async def bill_receipt(context: PatientContext, payment_public_id: str) -> Receipt:
    account = await context_account(context)
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="bills.receipt.view",
            resource_type="Payment",
            resource_id=payment_public_id,
        )
        receipt, _ = await receipt_of(
            account, payment_public_id, paid_by_account=context.actor.account_id
        )
        return receipt


async def bill_payment_check(context: PatientContext, payment_public_id: str) -> PaymentResult:
    account = await context_account(context)
    _, payment_id = await receipt_of(account, payment_public_id)
    payer = Payer(
        account_id=account.id,
        channel="portal",
        audit=_record_audit(context),
        paid_by_account=context.actor.account_id,
        patient_id=context.patient.id,
        ip=context.actor.ip,
    )
    return await payment_check(payment_id, payer)


async def payment_webhook(payload: bytes, signature: str) -> bool:
    """A processor's signed news about one of our payments: finish it if it is still
    processing (a second copy, or one after the redirect, changes nothing). Raises
    WebhookRefusedError for a bad signature; True when it was ours and acted on."""
    event = processor_for().webhook(payload, signature)
    if event.outcome is None or not event.payment_public_id:
        return False
    rows = await Payment.select(Payment.id).where(Payment.public_id == event.payment_public_id)
    if not rows:
        return False
    if event.checkout is not None:
        from app.services.bills.checkout import checkout_webhook_settle

        await checkout_webhook_settle(rows[0]["id"], event.checkout)
        return True
    result, finished = await payment_finish(rows[0]["id"], event.outcome)
    if finished:
        await audit_insert(
            action=f"bills.payment.{result.status}",
            resource_type="Payment",
            resource_id=result.public_id,
        )
    return True
