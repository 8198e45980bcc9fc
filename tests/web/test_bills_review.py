"""The billing office settles money Stripe took that was not posted (a payment in review),
over HTTP against the local stand-in for Stripe: it posts to the bill only Stripe's exact
amount and only while it is owed, gives back all Stripe took otherwise, does either once
however often the button is pressed, and leaves the review list; nobody but the billing
office can."""

from __future__ import annotations

import re
from typing import Any

from app.services.bills.ledger import account_balance
from app.tables import AuditEvent, LedgerEntry, Payment
from tests.factories import Bill
from tests.stripe_fake import Seen
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


async def _in_review(stripe: Stripe, *, paid_cents: int | None = None) -> tuple[Bill, str]:
    """A payment in review: paid at Stripe after it had ended here (our amount), or paid with
    another amount than ours (`paid_cents`)."""
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    if paid_cents is None:
        await Payment.update({Payment.status: "cancelled"}).where(
            Payment.public_id == payment["public_id"]
        )
    stripe.fake.pay(payment["checkout_session"], amount=paid_cents)
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    assert (await _payment(bill))["status"] == "review"
    return bill, str(payment["public_id"])


async def _settle(stripe: Stripe, bill: Bill, public_id: str, action: str) -> str:
    page = await stripe.client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    sent = await stripe.client.post(
        f"/staff/billing/payments/{public_id}/review",
        data={"_csrf_token": csrf_from(page.text), "action": action},
    )
    return flashed(sent)


def _page_token(html: str) -> str:
    """The CSRF token every page carries for scripts (pages without a form have no field)."""
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert token, "no csrf-token meta tag"
    return token.group(1)


def _refunds(stripe: Stripe) -> list[dict[str, str]]:
    return [seen.form for seen in stripe.fake.requests if seen.path == "/v1/refunds"]


async def _audited(public_id: str) -> list[str]:
    rows = (
        await AuditEvent.select(AuditEvent.action)
        .where((AuditEvent.resource_id == public_id) & AuditEvent.action.like("billing.review.%"))
        .order_by(AuditEvent.id)
    )
    return [row["action"] for row in rows]


async def test_a_payment_paid_after_it_ended_is_posted_once(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe)
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "post") == "billing_review_posted"
    assert (await _payment(bill))["status"] == "succeeded"
    assert await _payment_lines(bill) == 1
    assert await account_balance(bill.account.id) == 0
    # Pressed again (a second tab, a double tap): nothing more is posted.
    again = await stripe.client.post(
        f"/staff/billing/payments/{public_id}/review",
        data={
            "_csrf_token": csrf_from((await stripe.client.get("/staff/billing")).text),
            "action": "post",
        },
    )
    assert flashed(again) == "pay_review_settled"
    assert await _payment_lines(bill) == 1
    assert await _audited(public_id) == ["billing.review.post"]
    listing = (await stripe.client.get("/staff/billing")).text
    to_review = listing.split("Payments that did not go through")[0]
    assert bill.account.guarantor_name not in to_review


async def test_another_amount_than_ours_is_never_posted_and_is_given_back_whole(
    stripe: Stripe,
) -> None:
    bill, public_id = await _in_review(stripe, paid_cents=100)
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "post") == "pay_review_amount_differs"
    assert (await _payment(bill))["status"] == "review"
    assert await _payment_lines(bill) == 0
    assert await _settle(stripe, bill, public_id, "refund") == "billing_review_refunded"
    assert [form["amount"] for form in _refunds(stripe)] == ["100"]  # what Stripe took
    assert (await _payment(bill))["status"] == "returned"
    assert await _payment_lines(bill) == 0
    assert await account_balance(bill.account.id) == bill.owed_cents
    assert await LedgerEntry.count().where(LedgerEntry.account == bill.account.id) == 2
    assert await _audited(public_id) == ["billing.review.refund.start", "billing.review.refund"]


async def test_a_refund_pressed_twice_gives_back_once(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe)
    await staff_signed_in(stripe.client, role="billing")
    page = await stripe.client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    token = csrf_from(page.text)
    url = f"/staff/billing/payments/{public_id}/review"
    first = await stripe.client.post(url, data={"_csrf_token": token, "action": "refund"})
    second = await stripe.client.post(url, data={"_csrf_token": token, "action": "refund"})
    assert flashed(first) == "billing_review_refunded"
    assert flashed(second) == "pay_review_settled"
    assert len(_refunds(stripe)) == 1


async def test_money_no_longer_owed_is_not_posted(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe)
    await LedgerEntry.insert(
        LedgerEntry(account=bill.account.id, kind="adjustment", amount_cents=bill.owed_cents)
    )
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "post") == "pay_review_more_than_owed"
    assert (await _payment(bill))["status"] == "review"
    assert await _payment_lines(bill) == 0


async def test_stripe_not_saying_paid_changes_nothing(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe)
    session = (
        await Payment.select(Payment.checkout_session).where(Payment.public_id == public_id)
    )[0]["checkout_session"]
    stripe.fake.sessions[session].update(status="expired", payment_status="unpaid")
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "post") == "pay_review_unknown"
    assert await _settle(stripe, bill, public_id, "refund") == "pay_review_unknown"
    assert (await _payment(bill))["status"] == "review"
    assert _refunds(stripe) == []


async def test_only_the_billing_office_settles_a_review(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe)
    # The patient, signed in: not theirs to settle.
    refused = await stripe.client.post(
        f"/staff/billing/payments/{public_id}/review",
        data={
            "_csrf_token": _page_token((await stripe.client.get("/bills")).text),
            "action": "post",
        },
        follow_redirects=False,
    )
    assert refused.status_code in (302, 303, 401, 403)
    await staff_signed_in(stripe.client, role="front_desk")
    refused = await stripe.client.post(
        f"/staff/billing/payments/{public_id}/review",
        data={
            "_csrf_token": _page_token((await stripe.client.get("/staff")).text),
            "action": "post",
        },
    )
    assert refused.status_code == 403
    assert (await _payment(bill))["status"] == "review"
    assert await _payment_lines(bill) == 0


async def test_the_patient_reads_a_payment_given_back(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe, paid_cents=100)
    patient_cookies = dict(stripe.client.cookies)
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "refund") == "billing_review_refunded"
    stripe.client.cookies.clear()
    stripe.client.cookies.update(patient_cookies)
    assert "Given back to your card" in (await stripe.client.get("/bills")).text


def _refunds_refused(stripe: Stripe) -> None:
    """Stripe says no to every refund (as when it was given back in its dashboard already)."""
    answer = stripe.fake.answer

    def refusing(seen: Seen) -> tuple[int, dict[str, Any]]:
        if seen.path == "/v1/refunds":
            error = {"type": "invalid_request_error", "code": "charge_already_refunded"}
            return 400, {"error": {**error, "message": "already refunded"}}
        return answer(seen)

    stripe.fake.answer = refusing  # type: ignore[method-assign]


async def test_a_refund_stripe_refuses_says_so_and_records_nothing(stripe: Stripe) -> None:
    bill, public_id = await _in_review(stripe, paid_cents=100)
    _refunds_refused(stripe)
    await staff_signed_in(stripe.client, role="billing")
    assert await _settle(stripe, bill, public_id, "refund") == "pay_refund_refused"
    assert (await _payment(bill))["status"] == "review"
    assert await _audited(public_id) == ["billing.review.refund.start"]  # asked, refused


async def test_a_staff_refund_stripe_refuses_is_not_recorded(stripe: Stripe) -> None:
    _, bill = await _signed_in_with_bill(stripe)
    await _to_checkout(stripe.client)
    payment = await _payment(bill)
    stripe.fake.pay(payment["checkout_session"])
    await _webhook(stripe, "checkout.session.completed", payment["checkout_session"])
    assert (await _payment(bill))["status"] == "succeeded"
    _refunds_refused(stripe)
    await staff_signed_in(stripe.client, role="billing")
    page = await stripe.client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    refused = await stripe.client.post(
        f"/staff/billing/payments/{payment['public_id']}/refund",
        data={"_csrf_token": csrf_from(page.text), "amount": ""},
    )
    assert flashed(refused) == "pay_refund_refused"
    refunds = LedgerEntry.count().where(
        (LedgerEntry.account == bill.account.id) & (LedgerEntry.kind == "refund")
    )
    assert await refunds == 0
    assert await account_balance(bill.account.id) == 0
