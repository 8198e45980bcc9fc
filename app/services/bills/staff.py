"""The billing office's console: find an account (by name or a statement's code), read its
ledger, post an adjustment with a reason, refund a payment, and see payments that did not
go through. Every look and change is audited; a refund is a ledger entry, and the
processor hears of it with an idempotency key, so a double click refunds once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from app.access import StaffActor
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_staff
from app.services.bills.guest import normal_code
from app.services.bills.ledger import AccountRef, BillsView, account_balance, ledger_view
from app.services.bills.payments import (
    ATTEMPT_KEY,
    PaymentRefusedError,
    account_lock,
    amount_from_form,
)
from app.services.bills.processors import (
    ProcessorBusyError,
    ProcessorRefusedError,
    ProcessorRetryError,
    ProcessorTimeoutError,
    processor_for,
)
from app.services.bills.review import UNSETTLED
from app.tables import BillingAccount, LedgerEntry, Payment

# Reasons staff may give an adjustment (a credit to the family).
ADJUSTMENT_REASONS = ("contract", "prompt_pay", "courtesy", "correction", "hardship", "other")
SEARCH_LIMIT = 20
# A refund whose key a twin click is using waits for the twin's answer this many times.
REFUND_BUSY_TRIES = 5
REFUND_BUSY_WAIT_SECONDS = 0.2


@dataclass(frozen=True)
class AccountLine:
    public_id: str
    guarantor_name: str


async def billing_search(staff: StaffActor, query: str) -> list[AccountLine]:
    """Accounts whose guarantor or a covered person has this name, or with a statement of
    this code."""
    text = query.strip()
    if len(text) < 2:
        return []
    like = f"%{text.lower()}%"
    rows = await BillingAccount.raw(
        """SELECT ba.public_id, ba.guarantor_name
           FROM billing_account ba
           WHERE LOWER(ba.guarantor_name) LIKE {}
              OR ba.id IN (SELECT s.account FROM statement s WHERE s.code = {})
              OR ba.id IN (SELECT m.account FROM billing_member m JOIN patient p ON p.id = m.patient
                           WHERE LOWER(p.given_name || ' ' || p.family_name) LIKE {})
           ORDER BY ba.guarantor_name LIMIT {}""",
        like,
        normal_code(text),
        like,
        SEARCH_LIMIT,
    )
    found = [AccountLine(str(row["public_id"]), row["guarantor_name"]) for row in rows]
    async with write_transaction():
        await audit_staff(staff=staff, action="billing.search")
        for line in found:
            for patient_id in await _patients_of(line.public_id):
                await audit_staff(
                    staff=staff,
                    action="billing.search.result",
                    patient_id=patient_id,
                    resource_type="Account",
                    resource_id=line.public_id,
                )
    return found


async def _patients_of(account_public_id: str) -> list[int]:
    """Every record an account's lines may be about: its guarantor and its members."""
    rows = await BillingAccount.raw(
        """SELECT ba.guarantor AS patient FROM billing_account ba
           WHERE ba.public_id = {} AND ba.guarantor IS NOT NULL
           UNION
           SELECT m.patient FROM billing_member m JOIN billing_account ba ON ba.id = m.account
           WHERE ba.public_id = {}""",
        account_public_id,
        account_public_id,
    )
    return sorted(int(row["patient"]) for row in rows)


async def _account(public_id: str) -> AccountRef:
    row = await BillingAccount.select(
        BillingAccount.id,
        BillingAccount.public_id,
        BillingAccount.guarantor,
        BillingAccount.guarantor_name,
    ).where(BillingAccount.public_id == public_id)
    if not row:
        raise NotFoundError("billing account")
    return AccountRef(
        id=row[0]["id"],
        public_id=str(row[0]["public_id"]),
        guarantor_id=row[0]["guarantor"],
        guarantor_name=row[0]["guarantor_name"],
    )


async def billing_account_view(staff: StaffActor, public_id: str) -> BillsView:
    account = await _account(public_id)
    async with write_transaction():
        # The ledger shows every member's lines: the look is on each member's record.
        for patient_id in await _patients_of(account.public_id):
            await audit_staff(
                staff=staff,
                action="billing.account.view",
                patient_id=patient_id,
                resource_type="Account",
                resource_id=account.public_id,
            )
        return await ledger_view(account, None)


async def billing_adjust(
    staff: StaffActor, public_id: str, *, amount: str, reason: str, note: str, form_key: str
) -> None:
    """A credit to the account (never more than it owes), with its reason, once per form
    (the form's one-time key: a double click posts it once)."""
    if not ATTEMPT_KEY.fullmatch(form_key):
        raise PaymentRefusedError("form_expired")
    if reason not in ADJUSTMENT_REASONS:
        raise PaymentRefusedError("no_reason")
    cents = amount_from_form("other", amount, 0)
    if cents <= 0:
        raise PaymentRefusedError("too_little")
    account = await _account(public_id)
    key = f"adj-{form_key}"
    async with write_transaction():
        await lock_names(account_lock(account.id))
        if await LedgerEntry.exists().where(LedgerEntry.form_key == key):
            return  # its twin click posted it
        if cents > await account_balance(account.id):
            raise PaymentRefusedError("adjust_too_much")
        await LedgerEntry.insert(
            LedgerEntry(
                account=account.id,
                kind="adjustment",
                amount_cents=cents,
                reason=reason,
                note=note.strip()[:200],
                posted_by_staff=staff.staff_id,
                form_key=key,
            )
        )
        await audit_staff(
            staff=staff,
            action="billing.adjustment",
            patient_id=account.guarantor_id,
            resource_type="Account",
            resource_id=account.public_id,
        )


async def billing_refund(staff: StaffActor, payment_public_id: str, *, amount: str) -> str:
    """Give back part or all of a payment: the processor first (its key made from how much
    was already refunded, so a double click asks the same question twice and is answered
    once), then one refund line. The account's public id."""
    rows = await Payment.raw(
        """SELECT y.id, y.account, y.amount_cents, y.status, y.processor_ref, ba.public_id,
                  COALESCE(y.patient, ba.guarantor) AS patient,
                  (SELECT COALESCE(SUM(r.amount_cents), 0) FROM ledger_entry r
                   WHERE r.payment = y.id AND r.kind = 'refund') AS refunded
           FROM payment y JOIN billing_account ba ON ba.id = y.account
           WHERE y.public_id = {}""",
        payment_public_id,
    )
    if not rows or rows[0]["status"] != "succeeded":
        raise NotFoundError("payment")
    row = rows[0]
    left = row["amount_cents"] - int(row["refunded"])
    cents = amount_from_form("other", amount, left) if amount.strip() else left
    if cents <= 0 or cents > left:
        raise PaymentRefusedError("too_much")
    key = f"refund-{payment_public_id}-{int(row['refunded'])}"
    for attempt in range(REFUND_BUSY_TRIES):
        try:
            await processor_for().refund(
                processor_ref=row["processor_ref"] or "", amount_cents=cents, idempotency_key=key
            )
            break
        except ProcessorBusyError as error:
            # A twin click is asking with this key: ask again once it has its answer (the
            # same answer for the same amount; another amount is refused, below).
            if attempt == REFUND_BUSY_TRIES - 1:
                raise PaymentRefusedError("refund_busy") from error
            await asyncio.sleep(REFUND_BUSY_WAIT_SECONDS)
        except ProcessorRetryError as error:
            raise PaymentRefusedError("refund_busy") from error
        except ProcessorTimeoutError as error:
            raise PaymentRefusedError("processor_timeout") from error
        except ProcessorRefusedError as error:
            raise PaymentRefusedError("refund_refused") from error
    async with write_transaction():
        await lock_names(account_lock(row["account"]))
        already = await LedgerEntry.raw(
            "SELECT COALESCE(SUM(amount_cents), 0) AS total FROM ledger_entry "
            "WHERE payment = {} AND kind = 'refund'",
            row["id"],
        )
        if int(already[0]["total"]) != int(row["refunded"]):
            return str(row["public_id"])  # its twin click recorded this refund
        await LedgerEntry.insert(
            LedgerEntry(
                account=row["account"],
                kind="refund",
                amount_cents=cents,
                payment=row["id"],
                posted_by_staff=staff.staff_id,
            )
        )
        await audit_staff(
            staff=staff,
            action="billing.refund",
            patient_id=row["patient"],
            resource_type="Payment",
            resource_id=payment_public_id,
        )
    return str(row["public_id"])


@dataclass(frozen=True)
class FailedCharge:
    payment_public_id: str
    account_public_id: str
    guarantor_name: str
    amount_cents: int
    channel: str
    status: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class PaymentsToFollowUp:
    """The billing office's two lists: money Stripe took that we did not post (to refund or
    post by hand, first because someone has paid), and payments that did not go through."""

    to_review: list[FailedCharge]
    failed: list[FailedCharge]


async def billing_to_follow_up(staff: StaffActor, *, limit: int = 30) -> PaymentsToFollowUp:
    """Recent payments that did not go through (a plan's automatic charge among them), and
    every payment still in review, however old: it stays listed until someone settles it."""
    rows = await Payment.raw(
        """SELECT * FROM (
             SELECT y.public_id, ba.public_id AS account_public_id, ba.guarantor_name,
                    y.amount_cents, y.channel, y.status, y.decline_reason, y.created_at
             FROM payment y JOIN billing_account ba ON ba.id = y.account
             WHERE y.status IN ('declined', 'failed', 'action_required')
             ORDER BY y.created_at DESC LIMIT {}) AS failed
           UNION ALL
           SELECT y.public_id, ba.public_id, ba.guarantor_name,
                  y.amount_cents, y.channel, y.status, y.decline_reason, y.created_at
           FROM payment y JOIN billing_account ba ON ba.id = y.account
           WHERE y.status IN ('review', 'returning')""",
        limit,
    )
    charges = sorted(
        (
            FailedCharge(
                payment_public_id=str(row["public_id"]),
                account_public_id=str(row["account_public_id"]),
                guarantor_name=row["guarantor_name"],
                amount_cents=row["amount_cents"],
                channel=row["channel"],
                status=row["status"],
                reason=row["decline_reason"],
                created_at=row["created_at"],
            )
            for row in rows
        ),
        key=lambda charge: charge.created_at,
        reverse=True,
    )
    async with write_transaction():
        # The lists name the people who pay: a look at each listed account's records.
        for account_public_id in sorted({charge.account_public_id for charge in charges}):
            for patient_id in await _patients_of(account_public_id):
                await audit_staff(
                    staff=staff,
                    action="billing.follow_up.result",
                    patient_id=patient_id,
                    resource_type="Account",
                    resource_id=account_public_id,
                )
    return PaymentsToFollowUp(
        to_review=[charge for charge in charges if charge.status in UNSETTLED],
        failed=[charge for charge in charges if charge.status not in UNSETTLED],
    )
