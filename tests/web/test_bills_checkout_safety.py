"""Stripe Checkout's failure paths, against the local stand-in for Stripe: after a session
could not be made in time the person still reaches Stripe's page (or cancels); a payment
Stripe never made a session for, or never told us about, is settled by the worker after
the session's lifetime and holds nothing; money Stripe took that is not ours to post goes
to `review` (not held, not posted, shown to the person and the billing office); and only
Stripe's own cancel link (with the payment's secret) ends a payment from a GET."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from app.clock import set_clock, utcnow
from app.services.bills.checkout import (
    CHECKOUT_MINUTES,
    SETTLE_MARGIN_MINUTES,
    checkout_payments_settle,
)
from app.services.bills.ledger import account_balance
from app.tables import AuditEvent, Payment
from tests.stripe_fake import CHECKOUT_PAGE, Seen
from tests.web.conftest import csrf_from, flashed, staff_signed_in
from tests.web.test_bills_checkout import (  # noqa: F401  (the fixture)
    Stripe,
    _payment,
    _payment_lines,
    _signed_in_with_bill,
    _to_checkout,
    _webhook,
    stripe_fixture,
)


def _stripe_unreachable_once(stripe: Stripe) -> None:
    """The first session request never reaches Stripe (a 500 our client sees as a time-out,
    not kept under the key: as if the connection dropped before Stripe got it)."""
    answer = stripe.fake.answer
    failed: list[str] = []

    def flaky(seen: Seen) -> tuple[int, dict[str, Any]]:
        if seen.path == "/v1/checkout/sessions" and not failed:
            failed.append(seen.path)
            return 500, {"error": {"type": "api_error", "message": "timed out"}}
        return answer(seen)

    stripe.fake.answer = flaky  # type: ignore[method-assign]


def _after_the_session_s_lifetime() -> None:
    later = utcnow() + timedelta(minutes=CHECKOUT_MINUTES + SETTLE_MARGIN_MINUTES + 1)
    set_clock(lambda: later)


async def _audited(public_id: str) -> list[str]:
    rows = await AuditEvent.select(AuditEvent.action).where(
        (AuditEvent.resource_id == public_id) & AuditEvent.action.like("bills.payment.%")
    )
    return [row["action"] for row in rows]


async def test_after_a_session_time_out_continue_leads_to_stripe_s_page(stripe: Stripe) -> None:
    """The session could not be made in time: the person lands on a "pending" receipt that
    offers to go on to the card page (made now, with the same key) or to cancel."""
    _, bill = await _signed_in_with_bill(stripe)
    _stripe_unreachable_once(stripe)
    first = await _to_checkout(stripe.client)
    assert flashed(first[0]) == "payment_pending"
    payment = await _payment(bill)
    assert payment["status"] == "processing"
    assert payment["checkout_session"] is None
    receipt = await stripe.client.get(f"/bills/receipts/{payment['public_id']}")
    assert "Continue to the card page" in receipt.text
    assert "Cancel this payment" in receipt.text
    checked = await stripe.client.post(
        f"/bills/receipts/{payment['public_id']}/check",
        data={"_csrf_token": csrf_from(receipt.text)},
    )
    session_id = (await _payment(bill))["checkout_session"]
    assert session_id in stripe.fake.sessions  # made now
    assert checked.status_code == 303
    assert checked.headers["location"] == f"{CHECKOUT_PAGE}{session_id}", flashed(checked)
    # htmx cannot follow a redirect to another site: it is told to load the page.
    by_htmx = await stripe.client.post(
        f"/bills/receipts/{payment['public_id']}/check",
        data={"_csrf_token": csrf_from(receipt.text)},
        headers={"hx-request": "true"},
    )
    assert by_htmx.headers["hx-redirect"] == f"{CHECKOUT_PAGE}{session_id}"
    # The way back from Stripe (say, the back button) leads on to the open page too.
    done = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert done.headers["location"] == f"{CHECKOUT_PAGE}{session_id}"
    assert len(stripe.fake.sessions) == 1


async def test_cancel_this_payment_on_the_receipt_releases_a_payment_stripe_never_answered(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    _stripe_unreachable_once(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    receipt = await stripe.client.get(f"/bills/receipts/{payment['public_id']}")
    cancelled = await stripe.client.post(
        f"/bills/receipts/{payment['public_id']}/cancel",
        data={"_csrf_token": csrf_from(receipt.text)},
    )
    assert cancelled.headers["location"] == "/bills/pay"
    assert flashed(cancelled) == "payment_cancelled"
    after = await _payment(bill)
    assert after["status"] == "cancelled"
    assert stripe.fake.sessions[after["checkout_session"]]["status"] == "expired"
    page = await stripe.client.get("/bills/pay")
    assert "The whole balance, $80.00" in page.text


async def test_a_payment_stripe_never_made_a_session_for_is_released_after_its_lifetime(
    stripe: Stripe,
) -> None:
    """No session was ever made at Stripe, so no webhook will come: once the session's
    lifetime is past, the worker asks Stripe again with the same key, closes the page that
    comes back, and the balance is payable again."""
    _, bill = await _signed_in_with_bill(stripe)
    _stripe_unreachable_once(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    await checkout_payments_settle()
    assert (await _payment(bill))["status"] == "processing"  # not before its time
    _after_the_session_s_lifetime()
    await checkout_payments_settle()
    set_clock(None)  # back to now, where the person is still signed in
    after = await _payment(bill)
    assert after["status"] == "cancelled"
    assert stripe.fake.sessions[after["checkout_session"]]["status"] == "expired"
    made = [seen for seen in stripe.fake.requests if seen.path == "/v1/checkout/sessions"]
    assert {seen.headers["idempotency-key"] for seen in made} == {
        made[0].headers["idempotency-key"]
    }
    assert "bills.payment.cancelled" in await _audited(str(payment["public_id"]))
    page = await stripe.client.get("/bills/pay")
    assert "The whole balance, $80.00" in page.text, "balance still held by a dead payment"


async def test_a_payment_too_old_for_stripe_to_make_its_session_ends_with_nothing_charged(
    stripe: Stripe,
) -> None:
    """Two days on, Stripe refuses the session (its end would be in the past): the payment
    ends as not charged."""
    _, bill = await _signed_in_with_bill(stripe)
    _stripe_unreachable_once(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    await Payment.update({Payment.created_at: utcnow() - timedelta(days=2)}).where(
        Payment.public_id == payment["public_id"]
    )
    await checkout_payments_settle()
    after = await _payment(bill)
    assert after["status"] == "failed"
    assert after["checkout_session"] is None
    assert await _payment_lines(bill) == 0
    page = await stripe.client.get("/bills/pay")
    assert "The whole balance, $80.00" in page.text


async def test_a_session_paid_without_a_webhook_is_posted_once_by_the_worker(
    stripe: Stripe,
) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"])
    _after_the_session_s_lifetime()
    await checkout_payments_settle()
    await checkout_payments_settle()  # a second round changes nothing
    assert (await _payment(bill))["status"] == "succeeded"
    assert await _payment_lines(bill) == 1
    assert await account_balance(bill.account.id) == 0


async def test_a_session_whose_amount_is_not_ours_goes_to_review_and_holds_nothing(
    stripe: Stripe,
) -> None:
    """Stripe's amount is not ours: never posted, and not left `processing` for good: the
    payment goes to review (its PaymentIntent kept for a refund), the person is told the
    clinic will be in touch, and the billing office sees it on the account."""
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"], amount=100)
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    assert await _payment_lines(bill) == 0
    assert await account_balance(bill.account.id) == bill.owed_cents
    row = await Payment.select(Payment.status, Payment.processor_ref).where(
        Payment.public_id == payment["public_id"]
    )
    assert row[0]["status"] == "review", "held 'on its way' forever"
    intent = stripe.fake.sessions[payment["checkout_session"]]["intent"]["id"]
    assert row[0]["processor_ref"] == intent
    assert "bills.payment.review" in await _audited(str(payment["public_id"]))
    done = await stripe.client.get(f"/bills/checkout/{payment['public_id']}/done")
    assert flashed(done) == "payment_review"
    receipt = await stripe.client.get(done.headers["location"])
    assert "We are checking this payment; the clinic will contact you" in receipt.text
    page = await stripe.client.get("/bills/pay")
    assert "The whole balance, $80.00" in page.text
    await staff_signed_in(stripe.client, role="billing")
    ledger = await stripe.client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    assert "Needs review" in ledger.text
    assert intent in ledger.text
    assert await _payment_lines(bill) == 0


async def test_a_session_paid_after_our_payment_ended_goes_to_review(stripe: Stripe) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    await Payment.update({Payment.status: "cancelled"}).where(
        Payment.public_id == payment["public_id"]
    )
    stripe.fake.pay(payment["checkout_session"])  # paid at Stripe all the same
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    row = await Payment.select(Payment.status, Payment.processor_ref).where(
        Payment.public_id == payment["public_id"]
    )
    assert row[0]["status"] == "review"
    assert (
        row[0]["processor_ref"] == stripe.fake.sessions[payment["checkout_session"]]["intent"]["id"]
    )
    assert await _payment_lines(bill) == 0
    assert "bills.payment.review" in await _audited(str(payment["public_id"]))


async def test_a_bare_cancel_link_from_another_site_does_not_cancel_the_payment(
    stripe: Stripe,
) -> None:
    """Cancel is a GET: any top-level link (another site, a portal message; SameSite=Lax
    cookies go along) could end the person's payment. Only Stripe's cancel_url carries the
    payment's secret; without it (or with another), 404 and nothing changes."""
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    for query in ("", "?token=", "?token=0123456789abcdef"):
        seen = await stripe.client.get(
            f"/bills/checkout/{payment['public_id']}/cancel{query}",
            headers={"referer": "https://evil.example/", "sec-fetch-site": "cross-site"},
        )
        assert seen.status_code == 404
    assert (await _payment(bill))["status"] == "processing"
    assert stripe.fake.sessions[payment["checkout_session"]]["status"] == "open"
    # Stripe's own link still works.
    cancel_url = stripe.fake.sessions[payment["checkout_session"]]["cancel_url"]
    parts = urlsplit(cancel_url)
    back = await stripe.client.get(f"{parts.path}?{parts.query}")
    assert flashed(back) == "payment_cancelled"
