"""Typed amounts on the pay form: never a server error, never read a thousand times smaller
or larger than the person meant, whatever the language of the page or of the request."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient, Response

from app.services.bills.ledger import account_balance
from app.services.bills.processors.demo import DEMO
from app.tables import Payment
from tests.factories import make_bill, make_person
from tests.web.conftest import csrf_from, flashed, sign_in

VISA = "4242 4242 4242 4242"


@pytest.fixture(autouse=True)
def fresh_processor() -> None:
    DEMO.reset()


def _key(html: str) -> str:
    match = re.search(r'name="key" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def _pay_other(client: AsyncClient, page: str, other: str) -> Response:
    return await client.post(
        "/bills/pay",
        data={
            "_csrf_token": csrf_from(page),
            "key": _key(page),
            "amount": "other",
            "other": other,
            "number": VISA,
        },
    )


@pytest.mark.parametrize("other", ["1" * 999_999 + ",000", "1" * 1_000_000 + ",5"])
async def test_a_million_digit_amount_is_refused_not_a_server_error(
    client: AsyncClient, other: str
) -> None:
    """A field of a megabyte (the body limit is Litestar's 10 MB) gets the usual answer."""
    person = await make_person()
    await make_bill(person.patient)
    await sign_in(client, person)
    page = (await client.get("/bills/pay")).text
    answer = await _pay_other(client, page, other)
    assert answer.status_code == 303
    assert flashed(answer) == "pay_unreadable_amount"


async def test_three_digits_after_one_mark_is_refused_not_read_as_cents_in_spanish(
    client: AsyncClient,
) -> None:
    """The two languages read "1,500" 1000 times apart; a Spanish speaker in the US (es-US
    and es-MX write 1,500.00, and both are served as "es") meaning $1,500 is charged $1.50."""
    person = await make_person(locale="es")
    bill = await make_bill(person.patient, charge_cents=300_000, insurance_cents=100_000)
    await sign_in(client, person)
    page = (await client.get("/bills/pay")).text
    answer = await _pay_other(client, page, "1,500")
    assert flashed(answer) == "pay_unreadable_amount"
    assert await Payment.count().where(Payment.account == bill.account.id) == 0


async def test_an_amount_typed_on_a_spanish_page_is_not_misread_after_a_language_switch(
    client: AsyncClient,
) -> None:
    """The pay page is shown in Spanish (balance 2.000,00 US$), where "1.500" is one thousand
    five hundred; the language is switched in another tab before the form is sent. Read in
    English it would be $1.50: the amount is refused, in either language."""
    person = await make_person(locale="es")
    bill = await make_bill(person.patient, charge_cents=300_000, insurance_cents=100_000)
    await sign_in(client, person)
    page = (await client.get("/bills/pay")).text
    assert "2.000,00" in page
    home = (await client.get("/more")).text
    switched = await client.post(
        "/language", data={"_csrf_token": csrf_from(home), "locale": "en", "next": "/more"}
    )
    assert switched.status_code == 303
    answer = await _pay_other(client, page, "1.500")
    assert flashed(answer) == "pay_unreadable_amount"
    assert await Payment.count().where(Payment.account == bill.account.id) == 0
    assert await account_balance(bill.account.id) == 200_000
    # Written with its cents, it is read the same in both languages.
    paid = await _pay_other(client, (await client.get("/bills/pay")).text, "1.500,00")
    assert paid.status_code == 303
    charged = await Payment.select(Payment.amount_cents).where(Payment.account == bill.account.id)
    assert [row["amount_cents"] for row in charged] == [150_000]
