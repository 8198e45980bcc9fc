"""Payment plans: a balance split into monthly instalments (odd cents on the first), the
first charged at once by the worker, a notice days before each later one, each instalment
charged once even with two workers, and a declined plan charge listed for the billing
office."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from app.clinic import clinic_today
from app.services.bills.ledger import account_balance
from app.services.bills.plans import add_months, plan_create, plan_instalments_run, split
from app.services.bills.processors.demo import DEMO
from app.services.bills.staff import billing_to_follow_up
from app.tables import LedgerEntry, OutboxMessage, Payment, PlanInstalment
from tests.factories import make_bill, make_reachable_person, make_staff, staff_actor_for

VISA = "4242 4242 4242 4242"


@pytest.fixture(autouse=True)
def fresh_processor() -> None:
    DEMO.reset()


def test_a_balance_splits_into_equal_months_with_the_odd_cents_first() -> None:
    assert split(10_001, 3) == [3_335, 3_333, 3_333]
    assert sum(split(123_457, 6)) == 123_457
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2027, 11, 15), 3) == date(2028, 2, 15)


async def _charges_of(account_id: int) -> list[tuple[str, int]]:
    """The processor's charges for this account alone: plans other tests left behind may be
    due on the same run."""
    keys = {
        row["idempotency_key"]
        for row in await Payment.select(Payment.idempotency_key).where(
            Payment.account == account_id
        )
    }
    return [charge for charge in DEMO.charges if charge[0] in keys]


async def test_a_plan_charges_each_month_once_with_a_notice_before_each() -> None:
    person, phone, email = await make_reachable_person("Plan")
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    context = await person.context()
    await plan_create(context, months=3, saved_card="", number=VISA, payment_method="")
    # Two workers at once: the first instalment is charged once.
    await asyncio.gather(plan_instalments_run(), plan_instalments_run())
    assert len(await _charges_of(bill.account.id)) == 1
    assert await account_balance(bill.account.id) == 20_000
    rows = (
        await PlanInstalment.select(PlanInstalment.id, PlanInstalment.status)
        .where(PlanInstalment.plan.account == bill.account.id)
        .order_by(PlanInstalment.number)
    )
    assert [row["status"] for row in rows] == ["paid", "scheduled", "scheduled"]
    # Three days before the second: a notice (no amount), and no charge yet.
    told_before = await OutboxMessage.count().where(OutboxMessage.recipient.is_in([phone, email]))
    await PlanInstalment.update({PlanInstalment.due_on: clinic_today() + timedelta(days=2)}).where(
        PlanInstalment.id == rows[1]["id"]
    )
    await plan_instalments_run()
    assert (
        await OutboxMessage.count().where(OutboxMessage.recipient.is_in([phone, email]))
        > told_before
    )
    assert len(await _charges_of(bill.account.id)) == 1
    # Its day comes: charged once.
    await PlanInstalment.update({PlanInstalment.due_on: clinic_today()}).where(
        PlanInstalment.id == rows[1]["id"]
    )
    await asyncio.gather(plan_instalments_run(), plan_instalments_run())
    assert len(await _charges_of(bill.account.id)) == 2
    assert await account_balance(bill.account.id) == 10_000
    assert (
        await LedgerEntry.count().where(
            (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "payment")
        )
        == 2
    )


async def test_a_declined_plan_charge_is_listed_for_the_billing_office() -> None:
    person, _, _ = await make_reachable_person("Decline")
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    context = await person.context()
    await plan_create(
        context, months=2, saved_card="", number="4000 0000 0000 0002", payment_method=""
    )
    await plan_instalments_run()
    assert await account_balance(bill.account.id) == 30_000
    failed = await billing_to_follow_up(staff_actor_for(await make_staff("billing")))
    assert any(
        item.account_public_id == bill.account.public_id and item.channel == "plan"
        for item in failed.failed
    )
