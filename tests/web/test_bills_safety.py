"""Bills against misuse, over HTTP: amounts no one pays are refused with the form's own
words, guest looks are audited, the billing office cannot credit more than is owed or post
twice, a bills-only caregiver sees no one else's visits or cards, payer-chosen keys never
meet the system's own, and card testing is stopped after a few declines."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

from app.services.bills.processors.demo import DEMO
from tests.factories import make_bill, make_person
from tests.web.conftest import csrf_from, flashed, sign_in, staff_signed_in

VISA = "4242 4242 4242 4242"


@pytest.fixture(autouse=True)
def fresh_processor() -> None:
    DEMO.reset()


def _key(html: str) -> str:
    match = re.search(r'name="key" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def _guest_in(client: AsyncClient, code: str, birth: str) -> str:
    start = await client.get("/pay")
    found = await client.post(
        "/pay", data={"_csrf_token": csrf_from(start.text), "code": code, "birth_date": birth}
    )
    assert found.status_code == 303
    return (await client.get("/pay/statement")).text


async def test_an_amount_in_exponent_notation_is_refused_as_unreadable(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    answer = await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page.text),
            "key": _key(page.text),
            "amount": "other",
            "other": "1e30",
            "number": VISA,
        },
    )
    assert answer.status_code == 303
    assert flashed(answer) == "pay_unreadable_amount"
    client.cookies.clear()
    page_text = await _guest_in(client, bill.statement.code, person.patient.birth_date.isoformat())
    answer = await client.post(
        "/pay/statement",
        data={
            "_csrf_token": csrf_from(page_text),
            "key": _key(page_text),
            "amount": "other",
            "other": "9e99",
            "number": VISA,
        },
    )
    assert answer.status_code == 303
    assert flashed(answer) == "pay_unreadable_amount"
    assert DEMO.answered == {}


async def test_a_staff_refund_in_exponent_notation_is_refused(client: AsyncClient) -> None:
    person = await make_person()
    await make_bill(person.patient)
    from app.services.bills import bill_pay
    from app.services.bills.payments import new_attempt_key

    paid = await bill_pay(
        await person.context(), key=new_attempt_key(), choice="full", other="", number=VISA
    )
    await staff_signed_in(client, role="billing")
    home = await client.get("/staff/billing")
    answer = await client.post(
        f"/staff/billing/payments/{paid.public_id}/refund",
        data={"_csrf_token": csrf_from(home.text), "amount": "1e40"},
    )
    assert answer.status_code == 303
    assert flashed(answer) == "pay_unreadable_amount"
