"""The ledger: an account's balance is the sum of its entries, each signed by its kind, and
never stored anywhere else. Statements group an account's lines by visit, in plain words:
the charge, what insurance paid, adjustments, and what is left for the family to pay, with
why (a reason code the page words: "Your plan's deductible").

Who sees what: a record's bills show when its grant opens `billing`. The account is the one
the record belongs to or pays for (a parent pays for the family). A line about a
confidential visit names no visit to anyone but the patient themself: a parent paying for a
teenager sees "A visit" and its amounts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from app.access import PatientContext
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.tables import BillingAccount, LedgerEntry

# How each kind of entry moves the balance (what the family owes).
SIGNS: dict[str, int] = {
    "charge": 1,
    "insurance": -1,
    "adjustment": -1,
    "payment": -1,
    "refund": 1,
    "reversal": 1,
}
KINDS = tuple(SIGNS)
# Plain-language reasons a line may carry (worded in templates/bills/_words.html).
REASONS = (
    "deductible",
    "copay",
    "coinsurance",
    "not_covered",
    "no_insurance",
    "contract",
    "prompt_pay",
    "courtesy",
    "correction",
    "hardship",
    "other",
)
# The services a charge may be for (worded in templates/bills/_words.html).
SERVICES = (
    "office_visit",
    "annual_physical",
    "sick_visit",
    "follow_up",
    "well_child",
    "lab_work",
    "telehealth",
    "vaccine",
    "other",
)

# The balance over ledger rows `l`: a SQL expression (kinds are fixed words, not input).
BALANCE_SQL = (
    "COALESCE(SUM(CASE WHEN l.kind IN ('charge', 'refund', 'reversal') "
    "THEN l.amount_cents ELSE -l.amount_cents END), 0)"
)
# The account a record belongs to or pays for (placeholders: patient id twice).
ACCOUNT_OF_PATIENT = """
    SELECT ba.id, ba.public_id, ba.guarantor, ba.guarantor_name
    FROM billing_account ba
    WHERE ba.guarantor = {}
       OR ba.id IN (SELECT m.account FROM billing_member m WHERE m.patient = {})
    ORDER BY (ba.guarantor IS NOT NULL AND ba.guarantor = {}) DESC, ba.id
    LIMIT 1
"""


def balance_of(entries: Iterable[tuple[str, int]]) -> int:
    """The balance of (kind, amount in cents) entries, as the database sums them."""
    return sum(SIGNS[kind] * amount for kind, amount in entries)


@dataclass(frozen=True)
class AccountRef:
    id: int
    public_id: str
    guarantor_id: int | None
    guarantor_name: str


async def account_of_patient(patient_id: int) -> AccountRef | None:
    rows = await BillingAccount.raw(ACCOUNT_OF_PATIENT, patient_id, patient_id, patient_id)
    if not rows:
        return None
    row = rows[0]
    return AccountRef(
        id=row["id"],
        public_id=str(row["public_id"]),
        guarantor_id=row["guarantor"],
        guarantor_name=row["guarantor_name"],
    )


async def account_balance(account_id: int) -> int:
    rows = await LedgerEntry.raw(
        f"SELECT {BALANCE_SQL} AS balance FROM ledger_entry l WHERE l.account = {{}}",  # noqa: S608
        account_id,
    )
    return int(rows[0]["balance"])


@dataclass(frozen=True)
class HomeBill:
    """Home's card: "You owe $X — Pay"."""

    balance_cents: int


async def bills_home(context: PatientContext) -> HomeBill | None:
    """What the family owes, in one query; None when the grant does not open bills or
    nothing is owed."""
    if not context.may("billing"):
        return None
    pid = context.patient.id
    rows = await LedgerEntry.raw(
        f"""SELECT {BALANCE_SQL} AS balance FROM ledger_entry l
        WHERE l.account = (
            SELECT ba.id FROM billing_account ba
            WHERE ba.guarantor = {{}}
               OR ba.id IN (SELECT m.account FROM billing_member m WHERE m.patient = {{}})
            ORDER BY (ba.guarantor IS NOT NULL AND ba.guarantor = {{}}) DESC, ba.id
            LIMIT 1)""",  # noqa: S608  (a fixed expression)
        pid,
        pid,
        pid,
    )
    balance = int(rows[0]["balance"]) if rows else 0
    return HomeBill(balance_cents=balance) if balance > 0 else None


@dataclass(frozen=True)
class BillLine:
    kind: str
    amount_cents: int
    reason: str
    note: str


@dataclass
class VisitCharges:
    """One visit (or service) on a statement: its lines and what is left to pay."""

    key: str
    # None when the viewer may not see which visit it was (a confidential visit).
    service: str | None
    service_date: date | None
    first_name: str | None
    hidden: bool
    lines: list[BillLine] = field(default_factory=list)

    def total(self, kind: str) -> int:
        return sum(line.amount_cents for line in self.lines if line.kind == kind)

    @property
    def charged(self) -> int:
        return self.total("charge")

    @property
    def insurance_paid(self) -> int:
        return self.total("insurance")

    @property
    def adjusted(self) -> int:
        return self.total("adjustment")

    @property
    def you_owe(self) -> int:
        return balance_of(
            (line.kind, line.amount_cents)
            for line in self.lines
            if line.kind in ("charge", "insurance", "adjustment")
        )

    @property
    def reasons(self) -> list[str]:
        """Why the family owes what insurance did not pay, each reason once."""
        seen: list[str] = []
        for line in self.lines:
            if line.kind == "charge" and line.reason and line.reason not in seen:
                seen.append(line.reason)
        return seen


@dataclass(frozen=True)
class StatementView:
    public_id: str
    code: str
    issued_on: date
    due_on: date
    visits: list[VisitCharges]

    @property
    def total_owed(self) -> int:
        return sum(visit.you_owe for visit in self.visits)


@dataclass(frozen=True)
class PaymentLine:
    public_id: str
    amount_cents: int
    status: str
    channel: str
    card_brand: str
    card_last4: str
    created_at: datetime
    refunded_cents: int = 0
    reason: str = ""
    # The processor's id for it, for the billing office only (a payment in review is
    # refunded by it).
    processor_ref: str = ""


@dataclass(frozen=True)
class BillsView:
    account_public_id: str
    guarantor_name: str
    balance_cents: int
    statements: list[StatementView]
    payments: list[PaymentLine]
    # Credits and charges after the statements (refunds, reversals), newest first.
    other_lines: list[tuple[datetime, BillLine]] = field(default_factory=list)


def _hidden(row: Mapping[str, Any], viewer: PatientContext | None) -> bool:
    """A confidential visit's line is the patient's alone."""
    if not row["confidential"]:
        return False
    return viewer is None or not (viewer.is_self and viewer.patient.id == row["patient"])


def _others_hidden(
    row: Mapping[str, Any], viewer: PatientContext | None, guarantor: int | None
) -> bool:
    """Another person's visit: the viewer sees its amounts only. A record sees its own
    visits; the guarantor, signed in as themself, sees every member's (they pay for them).
    A caregiver with a grant on one member, or anyone sharing the family's account from
    another record, does not see the others'."""
    if viewer is None or row["patient"] is None or row["patient"] == viewer.patient.id:
        return False
    return not (viewer.is_self and guarantor is not None and viewer.patient.id == guarantor)


async def ledger_view(account: AccountRef, viewer: PatientContext | None) -> BillsView:
    """An account's statements, payments and balance (three queries), as `viewer` may
    see them (None: staff, who see every line but are told which are confidential). A
    payment's card shows only to the account that paid with it."""
    entries = await LedgerEntry.raw(
        """SELECT l.kind, l.amount_cents, l.reason, l.note, l.service, l.service_date,
                  l.confidential, l.patient, l.posted_at, l.appointment, l.id,
                  s.public_id AS statement_public_id, s.code, s.issued_on, s.due_on,
                  p.given_name, p.preferred_name
           FROM ledger_entry l
           LEFT JOIN statement s ON s.id = l.statement
           LEFT JOIN patient p ON p.id = l.patient
           WHERE l.account = {}
           ORDER BY s.issued_on DESC, l.service_date, l.id""",
        account.id,
    )
    payments = await LedgerEntry.raw(
        """SELECT y.public_id, y.amount_cents, y.status, y.channel, y.card_brand, y.card_last4,
                  y.created_at, y.decline_reason, y.paid_by_account, y.processor_ref,
                  (SELECT COALESCE(SUM(r.amount_cents), 0) FROM ledger_entry r
                   WHERE r.payment = y.id AND r.kind IN ('refund', 'reversal')) AS refunded
           FROM payment y WHERE y.account = {}
           ORDER BY y.created_at DESC, y.id DESC""",
        account.id,
    )
    statements: dict[str, StatementView] = {}
    visits: dict[tuple[str, str], VisitCharges] = {}
    others: list[tuple[datetime, BillLine]] = []
    balance = 0
    for row in entries:
        balance += SIGNS[row["kind"]] * row["amount_cents"]
        line = BillLine(
            kind=row["kind"],
            amount_cents=row["amount_cents"],
            reason=row["reason"],
            note=row["note"],
        )
        if row["statement_public_id"] is None:
            if row["kind"] != "payment":  # payments are listed with their receipts
                others.append((row["posted_at"], line))
            continue
        statement = statements.get(row["statement_public_id"])
        if statement is None:
            statement = statements[row["statement_public_id"]] = StatementView(
                public_id=str(row["statement_public_id"]),
                code=row["code"],
                issued_on=row["issued_on"],
                due_on=row["due_on"],
                visits=[],
            )
        hidden = _hidden(row, viewer) or _others_hidden(row, viewer, account.guarantor_id)
        visit_key = str(row["appointment"] or f"{row['patient']}-{row['service_date']}")
        visit = visits.get((statement.public_id, visit_key))
        if visit is None:
            visit = visits[(statement.public_id, visit_key)] = VisitCharges(
                key=visit_key,
                service=None if hidden else row["service"],
                service_date=None if hidden else row["service_date"],
                first_name=None if hidden else (row["preferred_name"] or row["given_name"]),
                hidden=hidden,
            )
            statement.visits.append(visit)
        elif hidden and not visit.hidden:
            visit.hidden, visit.service, visit.service_date, visit.first_name = (
                True,
                None,
                None,
                None,
            )
        visit.lines.append(line)
    others.sort(key=lambda item: item[0], reverse=True)
    return BillsView(
        account_public_id=account.public_id,
        guarantor_name=account.guarantor_name,
        balance_cents=balance,
        statements=list(statements.values()),
        payments=[
            PaymentLine(
                public_id=str(row["public_id"]),
                amount_cents=row["amount_cents"],
                status=row["status"],
                channel=row["channel"],
                card_brand=row["card_brand"] if _card_shown(row, viewer) else "",
                card_last4=row["card_last4"] if _card_shown(row, viewer) else "",
                created_at=row["created_at"],
                refunded_cents=int(row["refunded"]),
                reason=row["decline_reason"],
                processor_ref=(row["processor_ref"] or "") if viewer is None else "",
            )
            for row in payments
        ],
        other_lines=others,
    )


def _card_shown(row: Mapping[str, Any], viewer: PatientContext | None) -> bool:
    """A payment's card brand and last digits: the billing office, or the account that
    paid with it."""
    if viewer is None:
        return True
    return row["paid_by_account"] is not None and row["paid_by_account"] == viewer.actor.account_id


async def context_account(context: PatientContext) -> AccountRef:
    """The account this record's bills are on; 404 when it has none (or the grant does not
    open bills: 403)."""
    context.require("billing")
    account = await account_of_patient(context.patient.id)
    if account is None:
        raise NotFoundError("billing account")
    return account


async def bills_view(context: PatientContext) -> BillsView | None:
    """The bills page: None when the record has no bills yet."""
    context.require("billing")
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="bills.view")
        account = await account_of_patient(context.patient.id)
        if account is None:
            return None
        return await ledger_view(account, context)
