"""Bills: guarantor accounts, statements, the ledger and payments (FHIR Account, Invoice,
ChargeItem and PaymentReconciliation, in plain words).

The balance of an account is never stored: it is the sum of its ledger entries, each signed
by its kind (app/services/bills/ledger.py). A payment reaches the ledger at most once: the
ledger's `payment` column is unique, and a payment's idempotency key (made when the pay
page is shown) is unique too, so a double tap, a retry or a webhook arriving twice finds the
payment already there instead of making another.
"""

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient, StaffUser
from app.tables.scheduling import Appointment


class BillingAccount(Table, tablename="billing_account"):
    """Who pays (FHIR Account with its guarantor): a parent pays for the family, so one
    account covers several records."""

    id: Serial
    public_id = public_id_column()
    # The guarantor's own record here, if they have one (a parent who is also a patient).
    guarantor = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.restrict)
    guarantor_name = Varchar(length=200)
    created_at = created_at_column()


class BillingMember(Table, tablename="billing_member"):
    """A record whose visits are billed to the account (each record to one account)."""

    id: Serial
    account = ForeignKey(references=BillingAccount, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, unique=True)


class Statement(Table):
    """One bill sent to the guarantor (FHIR Invoice). Its code, printed on paper, opens
    guest pay together with the patient's date of birth."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=BillingAccount, on_delete=OnDelete.cascade, index=True)
    code = Varchar(length=12, unique=True)
    issued_on = Date()
    due_on = Date()
    # When the family was told it is ready, and that it is due soon (each once).
    ready_notice_at = Timestamptz(null=True, default=None)
    due_notice_at = Timestamptz(null=True, default=None)
    created_at = created_at_column()


class Payment(Table):
    """One attempt to pay, from the first tap to its end. States: processing -> succeeded |
    declined | action_required | failed; succeeded -> refunded (in part or whole, as
    refund entries). Only a change from `processing` may finish it, so whichever of the
    redirect, a retry or a webhook comes first wins, and the others find it finished."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=BillingAccount, on_delete=OnDelete.restrict, index=True)
    # Made when the pay page is shown; the processor gets it as its idempotency key.
    idempotency_key = Varchar(length=64, unique=True)
    amount_cents = Integer()
    currency = Varchar(length=3, default="usd")
    # processing | succeeded | declined | action_required | failed | cancelled (left Stripe
    # Checkout's page without paying) | review (Stripe took money we did not post: its
    # amount was not ours, or it came after the payment ended; the billing office refunds
    # it by processor_ref). Only `processing` holds the balance.
    status = Varchar(length=20, default="processing")
    # portal | guest | plan | staff: where it came through, for the clinic's dashboard
    channel = Varchar(length=10, default="portal")
    processor = Varchar(length=10, default="demo")
    # The processor's id for it (a PaymentIntent's id): never a card number.
    processor_ref = Varchar(length=80, null=True, default=None, unique=True)
    # The processor's token for the card (never its number), so a retry after a time-out
    # asks again with the same key and the same card.
    card_token = Varchar(length=80, default="")
    # A plain-language reason code when it did not go through (DECLINE_REASONS).
    decline_reason = Varchar(length=30, default="")
    card_brand = Varchar(length=20, default="")
    card_last4 = Varchar(length=4, default="")
    # A new card entered on Stripe Checkout's page: the Checkout Session's id, and whether
    # the person asked to keep the card (set when the payment is made, so a retry asks
    # Stripe with the same parameters).
    checkout_session = Varchar(length=80, null=True, default=None, index=True)
    keep_card = Boolean(default=False)
    # Who paid: a signed-in account (for a record), or nobody (guest pay).
    paid_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    patient = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.set_null)
    statement = ForeignKey(
        references=Statement, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()
    completed_at = Timestamptz(null=True, default=None)


class LedgerEntry(Table, tablename="ledger_entry"):
    """One line of an account's ledger; entries are only ever added.

    kind: charge (+) | insurance (-) | adjustment (-) | payment (-) | refund (+) |
    reversal (+, a payment the bank took back). `amount_cents` is never negative: the kind
    gives the sign."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=BillingAccount, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=12)
    amount_cents = Integer()
    # Whose visit the line is about, if any, and the visit itself.
    patient = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.restrict)
    appointment = ForeignKey(
        references=Appointment, null=True, default=None, on_delete=OnDelete.set_null
    )
    # A confidential visit's line names no visit to anyone but the patient.
    confidential = Boolean(default=False)
    statement = ForeignKey(
        references=Statement, null=True, default=None, on_delete=OnDelete.set_null, index=True
    )
    # What it is, in plain words ("Office visit"), and why (a reason code: REASONS).
    service = Varchar(length=40, default="")
    reason = Varchar(length=30, default="")
    # Staff's own words for an adjustment or a refund.
    note = Varchar(length=200, default="")
    # The payment this line records (payment) or gives back (refund, reversal): at most
    # one payment line per payment (a unique partial index, see migrations/).
    payment = ForeignKey(references=Payment, null=True, default=None, on_delete=OnDelete.restrict)
    posted_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    service_date = Date(null=True, default=None)
    posted_at = created_at_column()
    # A staff form's one-time key: the same form posted twice (a double click) posts once
    # (unique where set: an index, see migrations/).
    form_key = Varchar(length=64, null=True, default=None)


class SavedCard(Table, tablename="saved_card"):
    """A card a person chose to keep for next time: only the processor's own token for it
    (a Stripe PaymentMethod id), its brand and last four digits, never the number."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True)
    processor = Varchar(length=10)
    token = Varchar(length=80)
    brand = Varchar(length=20, default="")
    last4 = Varchar(length=4, default="")
    created_at = created_at_column()


class PaymentPlan(Table, tablename="payment_plan"):
    """A balance split into monthly instalments, charged to a kept card by the worker, with
    a notice a few days before each. At most one active plan per account."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=BillingAccount, on_delete=OnDelete.cascade, index=True)
    created_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    # The processor's token for the card (never its number).
    card_token = Varchar(length=80)
    card_brand = Varchar(length=20, default="")
    card_last4 = Varchar(length=4, default="")
    total_cents = Integer()
    # active | done | cancelled
    status = Varchar(length=10, default="active")
    created_at = created_at_column()


class PlanInstalment(Table, tablename="plan_instalment"):
    """One month's charge of a plan. Its payment's idempotency key is made from the plan and
    its number, so two workers (or a retry) charge it once."""

    id: Serial
    plan = ForeignKey(references=PaymentPlan, on_delete=OnDelete.cascade, index=True)
    number = Integer()
    due_on = Date()
    amount_cents = Integer()
    # scheduled | paid | failed | skipped (nothing was owed by then)
    status = Varchar(length=10, default="scheduled")
    payment = ForeignKey(references=Payment, null=True, default=None, on_delete=OnDelete.set_null)
    # When the notice before it went out.
    notified_at = Timestamptz(null=True, default=None)
