"""Bills over HTTP, as a browser without JavaScript: the home card's Pay, paying in two taps
with a kept card and seeing the receipt, a declined card that says why and changes nothing,
a bills-only caregiver who pays for a parent and sees nothing else, guest pay from a
statement's code (limited), and the billing office's ledger, adjustment and refund."""

from __future__ import annotations

import asyncio
import re

import pytest
from httpx import AsyncClient

from app.services.bills.ledger import account_balance
from app.services.bills.processors.demo import DEMO
from app.settings import get_settings
from app.tables import AuditEvent, Fact, LedgerEntry, Payment, SavedCard
from tests.factories import Person, grant, make_account, make_bill, make_person, unique
from tests.querycount import counting_queries
from tests.stripe_fake import SECRET_KEY, WEBHOOK_SECRET, event, fake_stripe, sign
from tests.web.conftest import csrf_from, flashed, serving, sign_in, staff_signed_in

VISA = "4242 4242 4242 4242"


@pytest.fixture(autouse=True)
def fresh_processor() -> None:
    DEMO.reset()


def _key(html: str) -> str:
    match = re.search(r'name="key" value="([^"]+)"', html)
    assert match, "the pay page has no attempt key"
    return match.group(1)


async def _keep_card(person: Person) -> str:
    card = SavedCard(
        account=person.account.id,
        processor="demo",
        token="pm_card_visa",
        brand="Visa",
        last4="4242",
    )
    await SavedCard.insert(card)
    return str(card.public_id)


async def test_home_says_what_is_owed_and_pays_in_two_taps_to_a_receipt(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    card = await _keep_card(person)
    await sign_in(client, person)
    home = await client.get("/home")
    assert "You owe $80.00" in home.text
    assert 'href="/bills/pay"' in home.text
    page = await client.get("/bills/pay")  # tap one
    assert "Pay now with Visa ending 4242" in page.text
    paid = await client.post(  # tap two: the whole balance with the kept card
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "card": card,
        },
    )
    assert paid.status_code == 303
    assert flashed(paid) == "payment_made"
    receipt = await client.get(paid.headers["location"])
    assert receipt.status_code == 200
    assert "$80.00" in receipt.text
    assert "Paid" in receipt.text
    assert "Balance now" in receipt.text
    assert await account_balance(bill.account.id) == 0
    payment = await Payment.select(Payment.channel).where(Payment.account == bill.account.id)
    assert payment[0]["channel"] == "portal"
    # The dashboard counts it as paid through the portal, and the one question follows.
    facts = await Fact.select(Fact.channel, Fact.value).where(
        Fact.kind == "payment", Fact.patient == person.patient.id
    )
    assert facts == [{"channel": "portal", "value": 80.0}]
    assert "How easy was that?" in receipt.text


async def test_a_declined_card_says_why_and_changes_nothing(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    declined = await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "card": "",
            "number": "4000 0000 0000 9995",
        },
    )
    assert declined.headers["location"] == "/bills/pay"
    assert flashed(declined) == "payment_insufficient_funds"
    again = await client.get("/bills/pay")
    assert _key(again.text) != _key(page.text)  # a new attempt gets a new key
    assert await account_balance(bill.account.id) == bill.owed_cents
    assert "4000" not in again.text.replace('placeholder="25.00"', "").split("Test cards")[0]


async def test_the_bill_explains_each_visit_in_plain_words(client: AsyncClient) -> None:
    person = await make_person()
    await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills")
    for words in ("Office visit", "Insurance paid", "You owe", "Your plan's deductible"):
        assert words.replace("'", "&#39;") in page.text or words in page.text, words


async def test_a_bills_only_caregiver_pays_for_a_parent_and_sees_nothing_else(
    client: AsyncClient,
) -> None:
    parent = await make_person("Rosa")
    bill = await make_bill(parent.patient)
    son = await make_account("Diego")
    await grant(son, parent.patient, kind="proxy", scope="billing", relationship="child")
    await sign_in(client, Person(account=son, patient=parent.patient))
    home = await client.get("/home")
    assert "$80.00 to pay" in home.text
    for tab in ('href="/results"', 'href="/messages"', 'href="/visits"'):
        assert tab not in home.text
    for path in ("/results", "/messages", "/visits"):
        assert (await client.get(path)).status_code == 403, path
    page = await client.get("/bills/pay")
    paid = await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "card": "",
            "number": VISA,
        },
    )
    assert flashed(paid) == "payment_made"
    assert await account_balance(bill.account.id) == 0


async def test_guest_pay_from_a_statement_code_and_date_of_birth(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    start = await client.get("/pay")
    wrong = await client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": bill.statement.code,
            "birth_date": "1901-01-01",
        },
    )
    assert wrong.status_code == 400
    assert "could not find a bill" in wrong.text
    found = await client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": bill.statement.code.lower(),
            "birth_date": person.patient.birth_date.isoformat(),
        },
    )
    assert found.status_code == 303
    assert found.headers["location"] == "/pay/statement"
    page = await client.get("/pay/statement")
    assert "You owe $80.00" in page.text
    assert "Office visit" not in page.text
    paid = await client.post(
        "/pay/statement",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "number": VISA,
        },
    )
    assert flashed(paid) == "payment_made"
    receipt = await client.get(paid.headers["location"])
    assert receipt.status_code == 200
    assert "$80.00" in receipt.text
    rows = await Payment.select(Payment.channel).where(Payment.account == bill.account.id)
    assert [row["channel"] for row in rows] == ["guest"]
    audited = await AuditEvent.select(AuditEvent.action).where(
        AuditEvent.action.like("bills.guest.%") | AuditEvent.action.like("bills.payment.%")
    )
    assert {"bills.guest.refused", "bills.guest.found", "bills.payment.succeeded"} <= {
        row["action"] for row in audited
    }


async def test_guest_pay_stops_guessing(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    start = await client.get("/pay")
    answers = [
        (
            await client.post(
                "/pay",
                data={
                    "_csrf_token": csrf_from(start.text),
                    "code": bill.statement.code,
                    "birth_date": f"1950-01-{day:02d}",
                },
            )
        ).status_code
        for day in range(1, 8)
    ]
    assert answers[:5] == [400] * 5
    assert answers[5:] == [429, 429]
    # Even the right date of birth waits now.
    right = await client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": bill.statement.code,
            "birth_date": person.patient.birth_date.isoformat(),
        },
    )
    assert right.status_code == 429


async def test_the_billing_office_adjusts_and_refunds_as_ledger_entries(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    await _keep_card(person)
    context = await person.context()
    from app.services.bills import bill_pay
    from app.services.bills.payments import new_attempt_key

    paid = await bill_pay(context, key=new_attempt_key(), choice="other", other="50", number=VISA)
    await staff_signed_in(client, role="billing")
    found = await client.get("/staff/billing", params={"q": bill.statement.code})
    assert f"/staff/billing/accounts/{bill.account.public_id}" in found.text
    ledger = await client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    assert "$30.00" in ledger.text  # owed after $50 of $80
    token = csrf_from(ledger.text)
    adjusted = await client.post(
        f"/staff/billing/accounts/{bill.account.public_id}/adjustments",
        data={
            "_csrf_token": token,
            "key": _key(ledger.text),
            "amount": "10",
            "reason": "courtesy",
            "note": "Kind",
        },
    )
    assert flashed(adjusted) == "billing_adjusted"
    refunded = await client.post(
        f"/staff/billing/payments/{paid.public_id}/refund",
        data={"_csrf_token": token, "amount": "20"},
    )
    assert flashed(refunded) == "billing_refunded"
    kinds = await LedgerEntry.select(LedgerEntry.kind).where(LedgerEntry.account == bill.account.id)
    assert sorted(row["kind"] for row in kinds) == [
        "adjustment",
        "charge",
        "insurance",
        "payment",
        "refund",
    ]
    assert await account_balance(bill.account.id) == 8_000 - 5_000 - 1_000 + 2_000
    assert DEMO.refunds
    assert DEMO.refunds[0][1] == 2_000


async def test_the_billing_office_reads_why_a_payment_did_not_go_through(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    context = await person.context()
    from app.services.bills import bill_pay
    from app.services.bills.payments import new_attempt_key

    declined = await bill_pay(
        context, key=new_attempt_key(), choice="other", other="50", number="4000 0000 0000 0002"
    )
    assert declined.status == "declined"
    await staff_signed_in(client, role="billing")
    page = (await client.get("/staff/billing")).text
    listed = page.index("Payments that did not go through")
    assert page.index(bill.account.guarantor_name, listed) > listed
    assert "The card was declined" in page
    assert "card_declined" not in page


async def test_the_front_desk_has_no_billing_console(client: AsyncClient) -> None:
    await staff_signed_in(client, role="front_desk")
    assert (await client.get("/staff/billing")).status_code == 403


async def test_a_plan_shows_its_schedule_before_and_after(client: AsyncClient) -> None:
    person = await make_person()
    await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    card = await _keep_card(person)
    await sign_in(client, person)
    bills = await client.get("/bills")
    assert 'href="/bills/plan"' in bills.text
    page = await client.get("/bills/plan")
    assert "3 payments: $100.00 today, then $100.00 each month" in page.text
    made = await client.post(
        "/bills/plan", data={"_csrf_token": csrf_from(page.text), "months": "3", "card": card}
    )
    assert flashed(made) == "plan_made"
    shown = await client.get("/bills")
    assert "Your payment plan" in shown.text
    assert shown.text.count("Scheduled") == 3


async def test_stripe_s_signed_webhook_reaches_the_ledger_without_a_csrf_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook is outside the CSRF check (it carries its own signature) and acts once."""
    person = await make_person()
    bill = await make_bill(person.patient)
    payment = Payment(
        account=bill.account.id,
        idempotency_key=unique("hook-"),
        amount_cents=bill.owed_cents,
        processor="stripe",
    )
    await Payment.insert(payment)
    intent = {
        "id": unique("pi_web_"),
        "status": "succeeded",
        "metadata": {"payment": str(payment.public_id)},
    }
    payload = event("payment_intent.succeeded", intent)
    with fake_stripe() as fake:
        monkeypatch.setenv("PORTAL_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("PORTAL_STRIPE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("PORTAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("PORTAL_STRIPE_BASE_URL", fake.url)
        get_settings.cache_clear()
        try:
            async with serving(get_settings()) as stripe_client:
                forged = await stripe_client.post(
                    "/bills/webhook", content=payload, headers={"stripe-signature": "t=1,v1=00"}
                )
                assert forged.status_code == 400
                for _ in range(2):  # Stripe may send an event more than once
                    sent = await stripe_client.post(
                        "/bills/webhook",
                        content=payload,
                        headers={
                            "stripe-signature": sign(payload),
                            "content-type": "application/json",
                        },
                    )
                    assert sent.status_code == 200
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
    assert await account_balance(bill.account.id) == 0
    assert (
        await LedgerEntry.count().where(
            (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "payment")
        )
        == 1
    )


async def test_a_double_tap_over_http_makes_one_payment(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    form = {
        "_csrf_token": csrf_from(page.text),
        "key": _key(page.text),
        "amount": "full",
        "card": "",
        "number": VISA,
    }
    answers = await asyncio.gather(*(client.post("/bills/pay", data=form) for _ in range(4)))
    assert {answer.status_code for answer in answers} == {303}
    assert len({answer.headers["location"] for answer in answers}) == 1
    assert len(DEMO.charges) == 1
    assert await account_balance(bill.account.id) == 0
    assert await Payment.count().where(Payment.account == bill.account.id) == 1


async def _bills_queries(client: AsyncClient, statements: int) -> int:
    person = await make_person()
    bill = await make_bill(person.patient)
    for _ in range(statements - 1):
        await make_bill(person.patient, account=bill.account)
    await sign_in(client, person)
    with counting_queries() as queries:
        response = await client.get("/bills")
    assert response.status_code == 200
    assert response.text.count("Bill of") == statements
    return len(queries)


async def test_the_bills_page_costs_the_same_however_many_statements(
    client: AsyncClient,
) -> None:
    assert await _bills_queries(client, 1) == await _bills_queries(client, 6)


async def test_an_amount_refused_marks_the_amount_field_with_its_reason(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    assert 'id="other"' in page.text
    assert 'aria-describedby="notice"' not in page.text
    refused = await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "other",
            "other": "lots",
            "card": "",
            "number": "4242 4242 4242 4242",
        },
    )
    assert flashed(refused) == "pay_unreadable_amount"
    again = (await client.get("/bills/pay")).text
    assert '<p id="notice" class="error" role="alert">Please enter the amount' in again
    assert re.search(r'id="other"[^>]*aria-invalid="true" aria-describedby="notice"', again)


async def test_guest_pay_ties_a_code_that_does_not_match_to_both_fields(
    client: AsyncClient,
) -> None:
    start = await client.get("/pay")
    missed = await client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": "NOSUCHCODE",
            "birth_date": "1950-01-01",
        },
    )
    assert '<p id="find-error" class="error" role="alert">' in missed.text
    for field in ("code", "birth_date"):
        assert re.search(
            rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="find-error"', missed.text
        ), field
