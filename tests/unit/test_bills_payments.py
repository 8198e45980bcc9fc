"""Paying a bill charges once: a double tap, a retry after a time-out and two devices at
once end in one charge and one ledger line; a declined card changes nothing and says why;
the balance is always what the ledger adds up to (a property test over random ledgers)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import write_transaction
from app.i18n import set_locale
from app.services.bills import PaymentRefusedError, bill_pay, bills_view, pay_page
from app.services.bills.ledger import KINDS, account_balance, balance_of
from app.services.bills.payments import amount_from_form, bill_payment_check, new_attempt_key
from app.services.bills.processors.demo import DEMO
from app.tables import BillingAccount, LedgerEntry, Payment
from tests.factories import grant, make_account, make_bill, make_patient, make_person

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
TIMEOUT = "4000 0000 0000 0119"


@pytest.fixture(autouse=True)
def fresh_processor() -> None:
    DEMO.reset()


async def _payment_lines(account_id: int) -> int:
    return await LedgerEntry.count().where(
        (LedgerEntry.account == account_id) & (LedgerEntry.kind == "payment")
    )


async def test_a_double_tap_charges_once_and_posts_one_ledger_line() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    key = (await pay_page(context)).key
    results = await asyncio.gather(
        *(bill_pay(context, key=key, choice="full", other="", number=VISA) for _ in range(6))
    )
    assert {result.status for result in results} == {"succeeded"}
    assert len({result.public_id for result in results}) == 1
    assert len(DEMO.charges) == 1
    assert await _payment_lines(bill.account.id) == 1
    assert await account_balance(bill.account.id) == 0
    # A tap long after, with the same key: the same payment, nothing new.
    again = await bill_pay(context, key=key, choice="full", other="", number=VISA)
    assert again.public_id == results[0].public_id
    assert len(DEMO.charges) == 1


async def test_two_devices_paying_at_once_make_one_payment() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    phone, laptop = await person.context(), await person.context()
    keys = [(await pay_page(phone)).key, (await pay_page(laptop)).key]
    outcomes = await asyncio.gather(
        *(
            bill_pay(device, key=key, choice="full", other="", number=VISA)
            for device, key in zip((phone, laptop), keys, strict=True)
        ),
        return_exceptions=True,
    )
    paid = [item for item in outcomes if not isinstance(item, BaseException)]
    refused = [item for item in outcomes if isinstance(item, PaymentRefusedError)]
    assert len(paid) == 1
    assert paid[0].status == "succeeded"
    assert len(refused) == 1
    assert refused[0].reason in ("in_progress", "nothing_owed")
    assert len(DEMO.charges) == 1
    assert await _payment_lines(bill.account.id) == 1
    assert await account_balance(bill.account.id) == 0


async def test_a_retry_after_a_time_out_finds_the_charge_made_and_charges_nothing_more() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    key = (await pay_page(context)).key
    first = await bill_pay(context, key=key, choice="full", other="", number=TIMEOUT)
    assert first.status == "processing"
    assert await account_balance(bill.account.id) == bill.owed_cents  # not yet known
    # The person taps again (the same form, the same key), and then asks from the receipt.
    retried = await bill_pay(context, key=key, choice="full", other="", number=TIMEOUT)
    checked = await bill_payment_check(context, first.public_id)
    assert retried.public_id == checked.public_id == first.public_id
    assert checked.status == "succeeded"
    assert len(DEMO.charges) == 1
    assert await _payment_lines(bill.account.id) == 1
    assert await account_balance(bill.account.id) == 0


async def test_a_declined_card_leaves_the_balance_and_says_why() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    result = await bill_pay(
        context, key=(await pay_page(context)).key, choice="full", other="", number=DECLINED
    )
    assert (result.status, result.decline_reason) == ("declined", "card_declined")
    assert await account_balance(bill.account.id) == bill.owed_cents
    assert await _payment_lines(bill.account.id) == 0
    assert DEMO.charges == []


async def test_another_amount_pays_part_and_more_than_owed_is_refused() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    part = await bill_pay(
        context, key=new_attempt_key(), choice="other", other="$25.50", number=VISA
    )
    assert part.amount_cents == 2550
    assert await account_balance(bill.account.id) == bill.owed_cents - 2550
    for other, reason in (
        ("9999", "too_much"),
        ("0.50", "too_little"),
        ("ten", "unreadable_amount"),
    ):
        with pytest.raises(PaymentRefusedError) as refused:
            await bill_pay(context, key=new_attempt_key(), choice="other", other=other, number=VISA)
        assert refused.value.reason == reason


@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("25.50", 2550),
        ("25,50", 2550),
        ("$1,234.50", 123450),
        ("1.234,50 US$", 123450),
        ("1,50", 150),  # a mark and two digits: cents, never 150 dollars
        ("1500", 150000),
        ("1,234,567", 123456700),
        (".5", 50),
    ],
)
def test_an_amount_reads_the_same_in_either_language(locale: str, typed: str, cents: int) -> None:
    set_locale(locale)
    try:
        assert amount_from_form("other", typed, 0) == cents
    finally:
        set_locale("en")


@pytest.mark.parametrize(
    "typed",
    [
        "1,500",  # $1,500 in English, $1.50 in Spanish: refused, never guessed
        "1.500",
        "1e3",
        "-5",
        "5.",
        "1.2.3",
        "0,001",
        "1,234.567",
        "1.234,567.50",
        "1" * 1_000_000 + ",5",  # a huge field: refused, not a server error
        "１２",  # full-width digits
    ],
)
def test_an_amount_that_could_be_misread_is_refused(typed: str) -> None:
    with pytest.raises(PaymentRefusedError) as refused:
        amount_from_form("other", typed, 0)
    assert refused.value.reason == "unreadable_amount"


async def test_only_test_cards_are_taken_in_the_demo_and_the_number_is_never_stored() -> None:
    person = await make_person()
    await make_bill(person.patient)
    context = await person.context()
    with pytest.raises(PaymentRefusedError) as refused:
        await bill_pay(
            context, key=new_attempt_key(), choice="full", other="", number="4111111111111111"
        )
    assert refused.value.reason == "not_a_test_card"
    await bill_pay(
        context, key=new_attempt_key(), choice="full", other="", number=VISA, save_card=True
    )
    stored = await Payment.select().where(Payment.paid_by_account == person.account.id)
    assert stored
    assert all("4242424242424242" not in str(row) for row in stored)
    assert all(row["card_token"].startswith("pm_") for row in stored)


async def test_a_saved_card_pays_in_one_tap_next_time() -> None:
    person = await make_person()
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    context = await person.context()
    await bill_pay(
        context, key=new_attempt_key(), choice="other", other="100", number=VISA, save_card=True
    )
    page = await pay_page(context)
    assert [(card.brand, card.last4) for card in page.saved_cards] == [("Visa", "4242")]
    paid = await bill_pay(
        context, key=page.key, choice="full", other="", saved_card=page.saved_cards[0].public_id
    )
    assert paid.status == "succeeded"
    assert paid.amount_cents == 20_000
    assert await account_balance(bill.account.id) == 0


async def test_a_parent_sees_no_detail_of_a_teenagers_confidential_visit() -> None:
    parent = await make_person("Maria")
    teen = await make_patient(given="Lucia", birth=date(date.today().year - 15, 1, 1))
    await make_bill(teen, guarantor=parent.patient, confidential=True)
    view = await bills_view(await parent.context())
    assert view is not None
    (visit,) = view.statements[0].visits
    assert visit.hidden
    assert visit.service is None
    assert visit.first_name is None
    assert visit.you_owe == 8_000  # the amounts still show: the parent pays them
    # The teenager, on their own record, sees their visit.
    teen_account = await make_account("Lucia")
    await grant(teen_account, teen)
    from app.access import patient_context_resolve
    from tests.factories import actor_for

    own = await patient_context_resolve(actor_for(teen_account))
    assert own is not None
    (own_visit,) = (await bills_view(own)).statements[0].visits  # type: ignore[union-attr]
    assert not own_visit.hidden
    assert own_visit.service == "office_visit"


async def _ledger_of(entries: list[tuple[str, int]]) -> int:
    async with write_transaction():
        account = BillingAccount(guarantor_name="Random Ledger")
        await BillingAccount.insert(account)
        if entries:
            await LedgerEntry.insert(
                *(
                    LedgerEntry(account=account.id, kind=kind, amount_cents=amount)
                    for kind, amount in entries
                )
            )
    return account.id


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 500_000)), max_size=25))
def test_the_balance_is_charges_less_payments_adjustments_and_insurance_plus_refunds(
    entries: list[tuple[str, int]],
) -> None:
    def total(*kinds: str) -> int:
        return sum(amount for kind, amount in entries if kind in kinds)

    expected = (
        total("charge")
        - total("payment")
        - total("adjustment")
        - total("insurance")
        + total("refund", "reversal")
    )
    assert balance_of(entries) == expected

    async def stored() -> int:
        return await account_balance(await _ledger_of(entries))

    assert asyncio.get_event_loop().run_until_complete(stored()) == expected


async def test_a_card_whose_bank_wants_to_check_changes_nothing() -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    result = await bill_pay(
        context, key=new_attempt_key(), choice="full", other="", number="4000 0025 0000 3155"
    )
    assert result.status == "action_required"
    assert await account_balance(bill.account.id) == bill.owed_cents
