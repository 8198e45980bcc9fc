"""The Stripe adapter against a local server that speaks the part of Stripe's API we use:
amounts in cents, the currency, one Idempotency-Key per payment attempt (the same on a
retry), and webhooks acted on only with a good signature, once, even when one arrives twice
or before the redirect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.services.bills import PaymentRefusedError, bill_pay, pay_page, payment_webhook
from app.services.bills.guest import Visitor, guest_pay, guest_pay_page
from app.services.bills.ledger import account_balance
from app.services.bills.payments import (
    Payer,
    payment_finish,
    payment_start,
)
from app.services.bills.plans import plan_create, plan_instalments_run
from app.services.bills.processors import ChargeOutcome, WebhookRefusedError, processor_for
from app.services.bills.staff import billing_refund
from app.settings import get_settings
from app.tables import LedgerEntry, Payment
from tests.factories import make_bill, make_person, make_staff, staff_actor_for
from tests.stripe_fake import SECRET_KEY, WEBHOOK_SECRET, FakeStripe, event, fake_stripe, sign


@pytest.fixture
def stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with fake_stripe() as fake:
        monkeypatch.setenv("PORTAL_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("PORTAL_STRIPE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("PORTAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("PORTAL_STRIPE_BASE_URL", fake.url)
        get_settings.cache_clear()
        yield fake
        monkeypatch.undo()
        get_settings.cache_clear()


async def _payment_lines(account_id: int) -> int:
    return await LedgerEntry.count().where(
        (LedgerEntry.account == account_id) & (LedgerEntry.kind == "payment")
    )


async def test_a_payment_is_one_payment_intent_in_cents_with_its_idempotency_key(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient, charge_cents=12_345, insurance_cents=2_000)
    context = await person.context()
    page = await pay_page(context)
    assert not page.demo_form  # no card form of ours outside the demo
    results = await asyncio.gather(
        *(
            bill_pay(context, key=page.key, choice="full", other="", payment_method="pm_card_visa")
            for _ in range(3)
        )
    )
    # Taps that reach Stripe while the first is still at work are told to wait (409).
    assert {result.status for result in results} <= {"succeeded", "processing"}
    assert len({result.public_id for result in results}) == 1
    intents = [seen for seen in stripe.requests if seen.path == "/v1/payment_intents"]
    assert intents, "nothing reached the fake"
    for seen in intents:
        assert seen.form["amount"] == "10345"  # $103.45 in cents
        assert seen.form["currency"] == "usd"
        assert seen.form["payment_method"] == "pm_card_visa"
        assert seen.form["confirm"] == "true"
        assert seen.headers["idempotency-key"] == "att-" + page.key
        assert seen.form["metadata[payment]"] == results[0].public_id
    assert len(stripe.charges) == 1
    assert await _payment_lines(bill.account.id) == 1
    stored = await Payment.select(Payment.processor_ref, Payment.status).where(
        Payment.public_id == results[0].public_id
    )
    assert stored[0]["processor_ref"] == stripe.charges[0]["id"]
    assert stored[0]["status"] == "succeeded"


async def test_a_decline_from_stripe_changes_nothing_and_keeps_its_reason(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    result = await bill_pay(
        context,
        key=(await pay_page(context)).key,
        choice="full",
        other="",
        payment_method="pm_card_insufficientFunds",
    )
    assert (result.status, result.decline_reason) == ("declined", "insufficient_funds")
    assert await account_balance(bill.account.id) == bill.owed_cents


async def _started(person_account: int, account_id: int, key: str) -> dict[str, object]:
    async def no_audit(action: str, resource_id: str) -> None:
        return None

    payer = Payer(
        account_id=account_id, channel="portal", audit=no_audit, paid_by_account=person_account
    )
    return await payment_start(payer, key=key, amount_cents=8_000, card_token="pm_card_visa")


async def test_a_webhook_twice_and_before_the_redirect_posts_one_ledger_line(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    row = await _started(person.account.id, bill.account.id, "attempt-webhook-first")
    intent = {"id": "pi_hook", "status": "succeeded", "metadata": {"payment": row["public_id"]}}
    payload = event("payment_intent.succeeded", intent)
    # The webhook comes first, then again, then the redirect's own answer.
    assert await payment_webhook(payload, sign(payload))
    assert await payment_webhook(payload, sign(payload))
    result, finished = await payment_finish(
        int(row["id"]),
        ChargeOutcome(status="succeeded", processor_ref="pi_hook"),  # type: ignore[call-overload]
    )
    assert result.status == "succeeded"
    assert not finished
    assert await _payment_lines(bill.account.id) == 1
    assert await account_balance(bill.account.id) == 0


async def test_a_webhook_with_a_bad_or_stale_signature_is_refused(stripe: FakeStripe) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    row = await _started(person.account.id, bill.account.id, "attempt-forged")
    intent = {"id": "pi_forged", "status": "succeeded", "metadata": {"payment": row["public_id"]}}
    payload = event("payment_intent.succeeded", intent)
    for signature in (
        sign(payload, secret="whsec_someone_else"),
        sign(payload, at=1_000_000_000),  # long ago: a replay
        "",
    ):
        with pytest.raises(WebhookRefusedError):
            await payment_webhook(payload, signature)
    assert await _payment_lines(bill.account.id) == 0


async def test_a_refund_goes_to_stripe_once_with_its_key_and_is_a_ledger_line(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    paid = await bill_pay(
        context,
        key=(await pay_page(context)).key,
        choice="full",
        other="",
        payment_method="pm_card_visa",
    )
    staff = staff_actor_for(await make_staff("billing"))
    await asyncio.gather(
        billing_refund(staff, paid.public_id, amount="30"),
        billing_refund(staff, paid.public_id, amount="30"),
    )
    refunds = [seen for seen in stripe.requests if seen.path == "/v1/refunds"]
    assert {seen.form["amount"] for seen in refunds} == {"3000"}
    assert len({seen.headers["idempotency-key"] for seen in refunds}) == 1
    assert (
        await LedgerEntry.count().where(
            (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "refund")
        )
        == 1
    )
    assert await account_balance(bill.account.id) == 3_000


def test_the_stripe_adapter_is_chosen_by_setting(stripe: FakeStripe) -> None:
    assert processor_for().name == "stripe"


async def test_an_unknown_payment_method_is_declined_and_leaves_the_balance_payable(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    visitor = Visitor(ip="127.0.0.77", user_agent="test")
    statement, page = await guest_pay_page(str(bill.statement.public_id), visitor)
    result = await guest_pay(
        statement.public_id,
        key=page.key,
        choice="full",
        other="",
        number="",
        payment_method="pm_nonexistent",
        visitor=visitor,
    )
    assert (result.status, result.decline_reason) == ("declined", "card_declined")
    rows = await Payment.select(Payment.status).where(Payment.account == bill.account.id)
    assert [row["status"] for row in rows] == ["declined"]
    context = await person.context()
    paid = await bill_pay(
        context,
        key=(await pay_page(context)).key,
        choice="full",
        other="",
        payment_method="pm_card_visa",
    )
    assert paid.status == "succeeded"
    assert await account_balance(bill.account.id) == 0


async def test_a_payment_method_that_is_not_a_token_is_refused_before_stripe(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    await make_bill(person.patient)
    context = await person.context()
    for method in ("pm_", "pm_x/../../v1/refunds", "pm_" + "a" * 61, "card_visa"):
        with pytest.raises(PaymentRefusedError) as refused:
            await bill_pay(
                context,
                key=(await pay_page(context)).key,
                choice="full",
                other="",
                payment_method=method,
            )
        assert refused.value.reason == "no_card"
    assert stripe.requests == []


async def test_stripe_refusing_our_keys_finishes_the_payment_as_declined(
    stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    key = (await pay_page(context)).key
    monkeypatch.setenv("PORTAL_STRIPE_SECRET_KEY", "sk_test_wrong")
    get_settings.cache_clear()
    result = await bill_pay(
        context, key=key, choice="full", other="", payment_method="pm_card_visa"
    )
    assert (result.status, result.decline_reason) == ("declined", "processing_error")
    assert (
        await Payment.count().where(
            (Payment.account == bill.account.id) & (Payment.status == "processing")
        )
        == 0
    )


async def test_two_refunds_of_different_amounts_at_once_refund_once_and_ask_to_try_again(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    paid = await bill_pay(
        context,
        key=(await pay_page(context)).key,
        choice="full",
        other="",
        payment_method="pm_card_visa",
    )
    staff = staff_actor_for(await make_staff("billing"))
    answers = await asyncio.gather(
        billing_refund(staff, paid.public_id, amount="30"),
        billing_refund(staff, paid.public_id, amount="20"),
        return_exceptions=True,
    )
    refused = [answer for answer in answers if isinstance(answer, PaymentRefusedError)]
    assert [answer.reason for answer in refused] == ["refund_busy"]
    refunds = await LedgerEntry.select(LedgerEntry.amount_cents).where(
        (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "refund")
    )
    made = [seen for seen in stripe.requests if seen.path == "/v1/refunds"]
    assert len(refunds) == 1
    assert {seen.form["amount"] for seen in made} >= {str(refunds[0]["amount_cents"])}
    assert await account_balance(bill.account.id) == refunds[0]["amount_cents"]


async def test_only_a_plan_s_charge_tells_stripe_the_person_is_not_there(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    context = await person.context()
    await bill_pay(
        context,
        key=(await pay_page(context)).key,
        choice="other",
        other="10",
        payment_method="pm_card_visa",
    )
    await plan_create(context, months=2, saved_card="", number="", payment_method="pm_card_visa")
    await plan_instalments_run()
    intents = [
        seen.form
        for seen in stripe.requests
        if seen.path == "/v1/payment_intents" and seen.form.get("metadata[payment]")
    ]
    ours = {
        str(row["public_id"]): row["channel"]
        for row in await Payment.select(Payment.public_id, Payment.channel).where(
            Payment.account == bill.account.id
        )
    }
    sent = {
        ours[form["metadata[payment]"]]: form.get("off_session")
        for form in intents
        if form["metadata[payment]"] in ours  # other tests' plans may be due on this run
    }
    assert sent == {"portal": None, "plan": "true"}


async def test_a_plan_charge_the_bank_wants_confirmed_is_declined_with_that_reason(
    stripe: FakeStripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    context = await person.context()
    await plan_create(
        context,
        months=2,
        saved_card="",
        number="",
        payment_method="pm_card_authenticationRequired",
    )
    await plan_instalments_run()
    rows = await Payment.select(Payment.status, Payment.decline_reason).where(
        Payment.account == bill.account.id
    )
    assert [(row["status"], row["decline_reason"]) for row in rows] == [
        ("declined", "authentication_required")
    ]
    assert await account_balance(bill.account.id) == 30_000
