"""Payment plans: a balance split into monthly instalments, the schedule shown before the
person agrees, charged by the worker to the card they chose, with a notice a few days before
each charge. An instalment's payment key is made from the plan and its number, so a retry
or a second worker charges it once; a charge that fails is listed for the billing office.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

from app.access import PatientContext
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.notices.bills import send_plan_charge_soon
from app.services.audit import audit_insert, audit_record
from app.services.bills.ledger import (
    BillsView,
    account_balance,
    account_of_patient,
    bills_view,
)
from app.services.bills.payments import (
    CardLine,
    Payer,
    PaymentRefusedError,
    account_lock,
    card_token_for,
    charge_once,
    in_progress_cents,
    saved_cards_of,
)
from app.settings import get_settings
from app.tables import Payment, PaymentPlan, PlanInstalment, SavedCard

# How many months a balance may be split into, and the smallest balance worth splitting.
PLAN_MONTHS = (2, 3, 4, 6)
PLAN_MINIMUM_CENTS = 5_000
# The notice goes this many days before a charge.
NOTICE_DAYS = 3


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split(total_cents: int, months: int) -> list[int]:
    """Equal monthly amounts, the odd cents on the first."""
    base, extra = divmod(total_cents, months)
    return [base + (extra if number == 0 else 0) for number in range(months)]


@dataclass(frozen=True)
class Instalment:
    number: int
    due_on: date
    amount_cents: int
    status: str = "scheduled"


def schedule(total_cents: int, months: int, first: date) -> list[Instalment]:
    return [
        Instalment(number=number + 1, due_on=add_months(first, number), amount_cents=amount)
        for number, amount in enumerate(split(total_cents, months))
    ]


@dataclass(frozen=True)
class PlanView:
    public_id: str
    status: str
    total_cents: int
    card_brand: str
    card_last4: str
    instalments: list[Instalment]


@dataclass(frozen=True)
class PlanChoice:
    """The plan page: what would be split, and the schedule for each choice of months."""

    balance_cents: int
    options: dict[int, list[Instalment]]
    current: PlanView | None
    saved_cards: list[CardLine] = field(default_factory=list)
    demo_form: bool = False


async def _current(account_id: int) -> PlanView | None:
    plans = await PaymentPlan.select(
        PaymentPlan.id,
        PaymentPlan.public_id,
        PaymentPlan.status,
        PaymentPlan.total_cents,
        PaymentPlan.card_brand,
        PaymentPlan.card_last4,
    ).where((PaymentPlan.account == account_id) & (PaymentPlan.status == "active"))
    if not plans:
        return None
    plan = plans[0]
    rows = (
        await PlanInstalment.select(
            PlanInstalment.number,
            PlanInstalment.due_on,
            PlanInstalment.amount_cents,
            PlanInstalment.status,
        )
        .where(PlanInstalment.plan == plan["id"])
        .order_by(PlanInstalment.number)
    )
    return PlanView(
        public_id=str(plan["public_id"]),
        status=plan["status"],
        total_cents=plan["total_cents"],
        card_brand=plan["card_brand"],
        card_last4=plan["card_last4"],
        instalments=[Instalment(**row) for row in rows],
    )


async def plan_page(context: PatientContext) -> PlanChoice:
    context.require("billing")
    account = await account_of_patient(context.patient.id)
    if account is None:
        return PlanChoice(balance_cents=0, options={}, current=None)
    async with write_transaction():
        await audit_record(actor=context.actor, context=context, action="bills.plan.view")
        balance = await account_balance(account.id) - await in_progress_cents(account.id)
        current = await _current(account.id)
    today = clinic_today()
    options = (
        {months: schedule(balance, months, today) for months in PLAN_MONTHS}
        if balance >= PLAN_MINIMUM_CENTS and current is None
        else {}
    )
    return PlanChoice(
        balance_cents=balance,
        options=options,
        current=current,
        saved_cards=await saved_cards_of(context.actor.account_id),
        demo_form=get_settings().payment_processor == "demo",
    )


async def plan_create(
    context: PatientContext, *, months: int, saved_card: str, number: str, payment_method: str
) -> str:
    """Split what is owed now into `months` instalments, the first today; the plan's id."""
    context.require("billing")
    account = await account_of_patient(context.patient.id)
    if account is None:
        raise PaymentRefusedError("no_plan")
    if months not in PLAN_MONTHS:
        raise PaymentRefusedError("no_plan")
    token = await card_token_for(
        context.actor.account_id,
        saved_card=saved_card,
        number=number,
        payment_method=payment_method,
    )
    card = await SavedCard.select(SavedCard.brand, SavedCard.last4).where(
        (SavedCard.account == context.actor.account_id) & (SavedCard.token == token)
    )
    today, now = clinic_today(), utcnow()
    async with write_transaction():
        await lock_names(account_lock(account.id))
        balance = await account_balance(account.id) - await in_progress_cents(account.id)
        if balance < PLAN_MINIMUM_CENTS:
            raise PaymentRefusedError("no_plan")
        if await PaymentPlan.exists().where(
            (PaymentPlan.account == account.id) & (PaymentPlan.status == "active")
        ):
            raise PaymentRefusedError("plan_exists")
        plan = PaymentPlan(
            account=account.id,
            created_by_account=context.actor.account_id,
            card_token=token,
            card_brand=card[0]["brand"] if card else "",
            card_last4=card[0]["last4"] if card else "",
            total_cents=balance,
        )
        await PaymentPlan.insert(plan)
        await PlanInstalment.insert(
            *(
                PlanInstalment(
                    plan=plan.id,
                    number=item.number,
                    due_on=item.due_on,
                    amount_cents=item.amount_cents,
                    # The first is charged now: agreeing to the plan was the notice.
                    notified_at=now if item.number == 1 else None,
                )
                for item in schedule(balance, months, today)
            )
        )
        await audit_record(
            actor=context.actor,
            context=context,
            action="bills.plan.create",
            resource_type="PaymentPlan",
            resource_id=str(plan.public_id),
        )
        return str(plan.public_id)


async def plan_view(context: PatientContext) -> PlanView | None:
    """The record's account's active plan, for the bills page."""
    account = await account_of_patient(context.patient.id)
    return None if account is None else await _current(account.id)


async def _plan_audit(action: str, resource_id: str) -> None:
    await audit_insert(action=action, resource_type="Payment", resource_id=resource_id)


async def plan_instalments_run() -> int:
    """The worker's minute: notices for charges coming in a few days, then the charges due
    today. How many notices and charges were made."""
    today, now = clinic_today(), utcnow()
    done = 0
    async with write_transaction():
        soon = await PlanInstalment.raw(
            """UPDATE plan_instalment SET notified_at = {}
               WHERE status = 'scheduled' AND notified_at IS NULL AND due_on <= {}
                 AND plan IN (SELECT id FROM payment_plan WHERE status = 'active')
               RETURNING id, plan""",
            now,
            today + timedelta(days=NOTICE_DAYS),
        )
        for row in soon:
            plan = await PaymentPlan.select(
                PaymentPlan.public_id, PaymentPlan.account.guarantor
            ).where(PaymentPlan.id == row["plan"])
            if plan and plan[0]["account.guarantor"] is not None:
                await send_plan_charge_soon(
                    patient_id=plan[0]["account.guarantor"],
                    event=f"plan-{plan[0]['public_id']}-{row['id']}",
                )
            done += 1
    due = await PlanInstalment.raw(
        """SELECT i.id, i.number, i.amount_cents, i.plan, p.public_id AS plan_public_id,
                  p.account, p.card_token
           FROM plan_instalment i JOIN payment_plan p ON p.id = i.plan
           WHERE i.status = 'scheduled' AND i.due_on <= {} AND i.notified_at IS NOT NULL
             AND p.status = 'active'
           ORDER BY i.due_on, i.id""",
        today,
    )
    for row in due:
        await _instalment_charge(row)
        done += 1
    return done


async def _instalment_charge(row: dict[str, object]) -> None:
    account_id = int(str(row["account"]))
    owed = await account_balance(account_id) - await in_progress_cents(account_id)
    amount = min(int(str(row["amount_cents"])), owed)
    status = "skipped"
    payment_id = None
    if amount > 0:
        payer = Payer(account_id=account_id, channel="plan", audit=_plan_audit)
        try:
            result, _ = await charge_once(
                payer,
                key=f"plan-{row['plan_public_id']}-{row['number']}",
                amount_cents=amount,
                card_token=str(row["card_token"]),
            )
        except PaymentRefusedError:
            result = None
        if result is not None and result.status == "processing":
            return  # asked again, with the same key, next minute
        status = "paid" if result is not None and result.status == "succeeded" else "failed"
        if result is not None:
            found = await Payment.select(Payment.id).where(Payment.public_id == result.public_id)
            payment_id = found[0]["id"] if found else None
    async with write_transaction():
        await PlanInstalment.update(
            {PlanInstalment.status: status, PlanInstalment.payment: payment_id}
        ).where((PlanInstalment.id == row["id"]) & (PlanInstalment.status == "scheduled"))
        left = await PlanInstalment.count().where(
            (PlanInstalment.plan == row["plan"]) & (PlanInstalment.status == "scheduled")
        )
        if not left:
            await PaymentPlan.update({PaymentPlan.status: "done"}).where(
                PaymentPlan.id == row["plan"]
            )


async def bills_page(context: PatientContext) -> tuple[BillsView | None, PlanView | None]:
    """The bills page: statements, payments and balance, and the plan if there is one."""
    view = await bills_view(context)
    if view is None:
        return None, None
    account = await account_of_patient(context.patient.id)
    return view, None if account is None else await _current(account.id)
