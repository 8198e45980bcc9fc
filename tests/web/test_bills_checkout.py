"""A new card through Stripe Checkout, over HTTP as a browser without JavaScript, against
the local stand-in for Stripe: the pay form leads to Stripe's page (one session for a double
tap, nothing about the person sent), the way back shows the payment as Stripe says it is,
leaving Stripe's page charges nothing, the webhook posts once, a session whose amount is not
ours is not posted, nobody else opens the way back, guest pay works the same, and the CSP
lets forms lead to Stripe only in Stripe mode."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from httpx import AsyncClient, Response

from app.services.bills.ledger import account_balance
from app.settings import get_settings
from app.tables import LedgerEntry, Payment, SavedCard
from tests.factories import Bill, Person, make_bill, make_person
from tests.stripe_fake import (
    CHECKOUT_PAGE,
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    fake_stripe,
    session_event,
    sign,
)
from tests.web.conftest import csrf_from, flashed, serving, sign_in, staff_signed_in

# Everything we may tell Stripe when making a session: the line, the amount, our payment's
# public id and the way back. Nothing else (no name, no email, no visit).
ALLOWED_FIELDS = {
    "mode",
    "line_items[0][quantity]",
    "line_items[0][price_data][currency]",
    "line_items[0][price_data][unit_amount]",
    "line_items[0][price_data][product_data][name]",
    "metadata[payment]",
    "success_url",
    "cancel_url",
    "expires_at",
    "payment_intent_data[setup_future_usage]",
}


@dataclass
class Stripe:
    client: AsyncClient
    fake: FakeStripe


@pytest.fixture(name="stripe")
async def stripe_fixture(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stripe]:
    with fake_stripe() as fake:
        monkeypatch.setenv("PORTAL_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("PORTAL_STRIPE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("PORTAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("PORTAL_STRIPE_BASE_URL", fake.url)
        get_settings.cache_clear()
        try:
            async with serving(get_settings()) as client:
                yield Stripe(client, fake)
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


def _key(html: str) -> str:
    match = re.search(r'name="key" value="([^"]+)"', html)
    assert match, "the pay page has no attempt key"
    return match.group(1)


async def _to_checkout(
    client: AsyncClient, pay_path: str = "/bills/pay", *, keep: bool = False, taps: int = 1
) -> list[Response]:
    page = await client.get(pay_path)
    assert "Pay with a new card" in page.text
    form = {
        "_csrf_token": csrf_from(page.text),
        "key": _key(page.text),
        "amount": "full",
        "checkout": "yes",
        **({"save": "yes"} if keep else {}),
    }
    post_path = "/pay/statement" if pay_path == "/pay/statement" else pay_path
    return list(await asyncio.gather(*(client.post(post_path, data=form) for _ in range(taps))))


async def _payment(bill: Bill) -> dict[str, Any]:
    rows = await Payment.select(
        Payment.public_id, Payment.status, Payment.checkout_session, Payment.amount_cents
    ).where(Payment.account == bill.account.id)
    assert len(rows) == 1
    return dict(rows[0])


def _cancel_link(stripe: Stripe, payment: dict[str, Any]) -> str:
    """The way back from Stripe's page without paying, as its session's cancel_url has it
    (with the payment's secret)."""
    parts = urlsplit(stripe.fake.sessions[payment["checkout_session"]]["cancel_url"])
    return f"{parts.path}?{parts.query}"


async def _payment_lines(bill: Bill) -> int:
    return await LedgerEntry.count().where(
        (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "payment")
    )


async def _webhook(stripe: Stripe, kind: str, session_id: str) -> Response:
    payload = session_event(stripe.fake, kind, session_id)
    return await stripe.client.post(
        "/bills/webhook",
        content=payload,
        headers={"stripe-signature": sign(payload), "content-type": "application/json"},
    )


async def _signed_in_with_bill(stripe: Stripe) -> tuple[Person, Bill]:
    person = await make_person()
    bill = await make_bill(person.patient)
    await sign_in(stripe.client, person)
    return person, bill


async def test_a_double_tap_makes_one_checkout_session_and_tells_stripe_nothing_about_the_person(
    stripe: Stripe,
) -> None:
    person, bill = await _signed_in_with_bill(stripe)
    page = await stripe.client.get("/bills/pay")
    assert 'name="number"' not in page.text  # no card field of ours outside the demo
    answers = await _to_checkout(stripe.client, keep=True, taps=3)
    assert {answer.status_code for answer in answers} == {303}
    assert len({answer.headers["location"] for answer in answers}) == 1
    assert answers[0].headers["location"].startswith(CHECKOUT_PAGE)
    assert len(stripe.fake.sessions) == 1
    payment = await _payment(bill)
    assert payment["status"] == "processing"  # never paid before Stripe says so
    assert payment["checkout_session"] in stripe.fake.sessions
    made = [seen for seen in stripe.fake.requests if seen.path == "/v1/checkout/sessions"]
    for seen in made:
        assert set(seen.form) <= ALLOWED_FIELDS
        assert seen.form["line_items[0][price_data][unit_amount]"] == "8000"
        assert seen.form["line_items[0][price_data][currency]"] == "usd"
        assert seen.form["metadata[payment]"] == str(payment["public_id"])
        assert seen.form["payment_intent_data[setup_future_usage]"] == "off_session"
        assert seen.headers["idempotency-key"].startswith("att-")
        assert seen.form["success_url"].endswith(
            f"/bills/checkout/{payment['public_id']}/done?session_id={{CHECKOUT_SESSION_ID}}"
        )
        assert f"/bills/checkout/{payment['public_id']}/cancel?token=" in seen.form["cancel_url"]
        sent = " ".join(seen.form.values())
        for private in (
            person.patient.family_name,
            person.patient.birth_date.isoformat(),
            "visit",
        ):
            assert private.lower() not in sent.lower()
    assert len({seen.headers["idempotency-key"] for seen in made}) == 1
    assert await account_balance(bill.account.id) == bill.owed_cents


async def test_the_checkout_session_is_keyed_by_the_pay_page_s_attempt_key(
    stripe: Stripe,
) -> None:
    await _signed_in_with_bill(stripe)
    page = await stripe.client.get("/bills/pay")
    await stripe.client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "checkout": "yes",
        },
    )
    made = [seen for seen in stripe.fake.requests if seen.path == "/v1/checkout/sessions"]
    assert [seen.headers["idempotency-key"] for seen in made] == ["att-" + _key(page.text)]
    assert "payment_intent_data[setup_future_usage]" not in made[0].form  # not asked to keep


async def test_leaving_stripe_s_page_charges_nothing_and_leaves_the_balance_unchanged(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    back = await stripe.client.get(_cancel_link(stripe, payment))
    assert back.status_code == 303
    assert back.headers["location"] == "/bills/pay"
    assert flashed(back) == "payment_cancelled"
    assert (await _payment(bill))["status"] == "cancelled"
    # Closed at Stripe too, so the page cannot be paid on later.
    assert stripe.fake.sessions[payment["checkout_session"]]["status"] == "expired"
    assert await account_balance(bill.account.id) == bill.owed_cents
    assert await _payment_lines(bill) == 0
    again = await stripe.client.get("/bills/pay")
    assert "The whole balance, $80.00" in again.text  # payable again, not "on its way"
    assert "You left the card page before paying. Nothing was charged." in again.text


async def test_the_way_back_before_stripe_says_paid_shows_the_payment_on_its_way(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    # Finished on Stripe's page, its money not there yet (a delayed payment method).
    stripe.fake.sessions[payment["checkout_session"]]["status"] = "complete"
    back = await stripe.client.get(
        f"/bills/checkout/{payment['public_id']}/done?session_id={payment['checkout_session']}"
    )
    assert back.status_code == 303
    assert flashed(back) == "payment_pending"
    receipt = await stripe.client.get(back.headers["location"])
    assert "Waiting for your card company" in receipt.text
    assert "· Paid" not in receipt.text
    assert await _payment_lines(bill) == 0


async def test_the_way_back_asks_stripe_once_and_a_webhook_after_it_posts_nothing_more(
    stripe: Stripe,
) -> None:
    person, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client, keep=True)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"])
    back = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert flashed(back) == "payment_made"
    receipt = await stripe.client.get(back.headers["location"])
    assert "Visa ending 4242" in receipt.text
    for _ in range(2):
        sent = await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
        assert sent.status_code == 200
    assert await _payment_lines(bill) == 1
    assert await account_balance(bill.account.id) == 0
    kept = await SavedCard.select(SavedCard.token, SavedCard.last4).where(
        SavedCard.account == person.account.id
    )
    assert len(kept) == 1
    assert kept[0]["token"].endswith(":pm_card_visa")  # with the Customer Checkout made
    assert kept[0]["last4"] == "4242"


async def test_a_completed_webhook_before_the_way_back_and_twice_posts_once(
    stripe: Stripe,
) -> None:
    person, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)  # not asked to keep the card
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"])
    for _ in range(2):
        sent = await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
        assert sent.status_code == 200
    assert (await _payment(bill))["status"] == "succeeded"
    assert await _payment_lines(bill) == 1
    back = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert flashed(back) == "payment_made"
    assert await _payment_lines(bill) == 1
    assert await account_balance(bill.account.id) == 0
    assert await SavedCard.count().where(SavedCard.account == person.account.id) == 0


async def test_an_expired_session_s_webhook_ends_the_payment_with_nothing_charged(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.sessions[payment["checkout_session"]]["status"] = "expired"
    sent = await _webhook(stripe, "checkout.session.expired", payment["checkout_session"])
    assert sent.status_code == 200
    assert (await _payment(bill))["status"] == "cancelled"
    assert await account_balance(bill.account.id) == bill.owed_cents


async def test_a_session_whose_amount_is_not_ours_is_not_posted(
    stripe: Stripe, caplog: pytest.LogCaptureFixture
) -> None:
    person, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"], amount=100)
    with caplog.at_level(logging.ERROR):
        sent = await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
        back = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert sent.status_code == 200
    assert flashed(back) == "payment_review"
    assert (await _payment(bill))["status"] == "review"
    assert await _payment_lines(bill) == 0
    assert await account_balance(bill.account.id) == bill.owed_cents
    logged = caplog.text
    assert str(payment["public_id"]) in logged
    assert "not posted" in logged
    assert person.patient.family_name not in logged


async def test_the_billing_office_sees_a_payment_in_review_until_someone_settles_it(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"], amount=100)
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    # A month of newer declines does not push it off the billing office's page.
    await Payment.update({Payment.created_at: Payment.created_at - timedelta(days=31)}).where(
        Payment.public_id == payment["public_id"]
    )
    await staff_signed_in(stripe.client, role="billing")
    page = (await stripe.client.get("/staff/billing")).text
    review = page.index("Paid at Stripe but not posted")
    assert page.index(bill.account.guarantor_name, review) < page.index(
        "Payments that did not go through"
    )
    assert "amount is not the amount of this payment" in page


async def test_another_account_cannot_open_the_way_back(stripe: Stripe) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stranger = await make_person()
    await make_bill(stranger.patient)
    await sign_in(stripe.client, stranger)
    # Even with Stripe's own cancel link (its secret), only the payer's session may use it.
    for path in (f"/bills/checkout/{payment['public_id']}/done", _cancel_link(stripe, payment)):
        seen = await stripe.client.get(path)
        assert seen.status_code == 404
    assert (await _payment(bill))["status"] == "processing"  # the stranger cancelled nothing


async def test_guest_pay_goes_to_stripe_checkout_and_comes_back_to_its_receipt(
    stripe: Stripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    start = await stripe.client.get("/pay")
    found = await stripe.client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": bill.statement.code,
            "birth_date": person.patient.birth_date.isoformat(),
        },
    )
    assert found.status_code == 303
    page = await stripe.client.get("/pay/statement")
    assert "Keep this card" not in page.text  # a guest has nowhere to keep it
    answers = await _to_checkout(stripe.client, "/pay/statement", keep=True)
    assert answers[0].headers["location"].startswith(CHECKOUT_PAGE)
    payment = await _payment(bill)
    made = [seen for seen in stripe.fake.requests if seen.path == "/v1/checkout/sessions"]
    assert "payment_intent_data[setup_future_usage]" not in made[0].form
    assert (
        made[0]
        .form["success_url"]
        .endswith(f"/pay/checkout/{payment['public_id']}/done?session_id={{CHECKOUT_SESSION_ID}}")
    )
    stripe.fake.pay(payment["checkout_session"])
    back = await stripe.client.get(f"/pay/checkout/{payment['public_id']}/done")
    assert flashed(back) == "payment_made"
    assert back.headers["location"] == f"/pay/receipts/{payment['public_id']}"
    assert await account_balance(bill.account.id) == 0
    # A signed-in account is not the guest who paid: the guest's way back is not theirs.
    await sign_in(stripe.client, person)
    seen = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert seen.status_code == 404


async def test_guest_leaving_stripe_s_page_is_back_on_guest_pay_with_nothing_charged(
    stripe: Stripe,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    start = await stripe.client.get("/pay")
    await stripe.client.post(
        "/pay",
        data={
            "_csrf_token": csrf_from(start.text),
            "code": bill.statement.code,
            "birth_date": person.patient.birth_date.isoformat(),
        },
    )
    await _to_checkout(stripe.client, "/pay/statement")
    payment = await _payment(bill)
    back = await stripe.client.get(_cancel_link(stripe, payment))
    assert back.headers["location"] == "/pay/statement"
    assert flashed(back) == "payment_cancelled"
    assert await account_balance(bill.account.id) == bill.owed_cents


async def test_in_stripe_mode_forms_may_lead_to_stripe_checkout_and_no_script_of_stripe_s_runs(
    stripe: Stripe,
) -> None:
    for path in ("/", "/pay", "/no-such-page"):
        csp = (await stripe.client.get(path)).headers["content-security-policy"]
        assert "form-action 'self' https://checkout.stripe.com;" in csp, path
        assert "stripe" not in csp.split("form-action")[0], path  # script-src stays 'self'


async def test_in_demo_mode_forms_lead_only_to_the_portal(client: AsyncClient) -> None:
    for path in ("/", "/pay", "/no-such-page"):
        csp = (await client.get(path)).headers["content-security-policy"]
        assert "form-action 'self';" in csp, path
        assert "stripe" not in csp, path


async def test_the_demo_offers_no_stripe_page_and_refuses_one(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    assert "Pay with a new card" not in page.text
    assert 'name="number"' in page.text  # the demo's own test-card form, as before
    refused = await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "checkout": "yes",
        },
    )
    assert flashed(refused) == "pay_no_card"
    assert await Payment.count().where(Payment.account == bill.account.id) == 0


async def test_check_again_on_a_payment_on_its_way_asks_stripe_about_its_session(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    receipt = await stripe.client.get(f"/bills/receipts/{payment['public_id']}")
    stripe.fake.pay(payment["checkout_session"])
    checked = await stripe.client.post(
        f"/bills/receipts/{payment['public_id']}/check",
        data={"_csrf_token": csrf_from(receipt.text)},
    )
    assert flashed(checked) == "payment_made"
    assert await _payment_lines(bill) == 1


async def test_a_card_kept_through_checkout_pays_the_next_bill_with_its_customer(
    stripe: Stripe,
) -> None:
    person, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client, keep=True)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"])
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    card = await SavedCard.select(SavedCard.public_id, SavedCard.token).where(
        SavedCard.account == person.account.id
    )
    assert len(card) == 1
    await make_bill(person.patient, account=bill.account)  # the next visit's bill
    page = await stripe.client.get("/bills/pay")
    assert "Pay now with Visa ending 4242" in page.text
    paid = await stripe.client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "card": str(card[0]["public_id"]),
        },
    )
    assert flashed(paid) == "payment_made"
    intent = [seen for seen in stripe.fake.requests if seen.path == "/v1/payment_intents"][-1]
    customer, _, method = card[0]["token"].partition(":")
    assert (intent.form["customer"], intent.form["payment_method"]) == (customer, method)


async def test_the_pay_form_loads_stripe_s_page_in_full_and_htmx_is_told_to_as_well(
    stripe: Stripe,
) -> None:
    await _signed_in_with_bill(stripe)
    page = await stripe.client.get("/bills/pay")
    assert re.search(r'<form[^>]*id="pay-form"[^>]*hx-boost="false"', page.text)
    answer = await stripe.client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "full",
            "checkout": "yes",
        },
        headers={"hx-request": "true"},
    )
    assert answer.status_code == 200
    assert answer.headers["hx-redirect"].startswith(CHECKOUT_PAGE)
