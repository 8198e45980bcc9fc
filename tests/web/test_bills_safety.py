"""Bills against misuse, over HTTP: amounts no one pays are refused with the form's own
words (and never read a thousand times off, whatever the language), guest looks are
audited, the billing office cannot credit more than is owed or post twice, a bills-only
caregiver sees no one else's visits or cards, payer-chosen keys never meet the system's own,
and card testing is stopped after a few declines."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from httpx import AsyncClient, Response
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware._utils import build_exclude_path_pattern

from app.clinic import clinic_today
from app.main import create_app
from app.services.bills import bill_pay
from app.services.bills.ledger import account_balance
from app.services.bills.payments import new_attempt_key
from app.services.bills.plans import plan_instalments_run
from app.services.bills.processors.demo import DEMO
from app.tables import AuditEvent, Payment, PaymentPlan, PlanInstalment
from tests.factories import Person, grant, make_account, make_bill, make_person
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


async def test_a_payer_cannot_choose_a_plan_instalment_s_key(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient, charge_cents=30_000, insurance_cents=0)
    await sign_in(client, person)
    page = await client.get("/bills/plan")
    made = await client.post(
        "/bills/plan",
        data={"_csrf_token": csrf_from(page.text), "months": "3", "number": VISA},
    )
    assert flashed(made) == "plan_made"
    plan = (
        await PaymentPlan.select(PaymentPlan.id, PaymentPlan.public_id).where(
            PaymentPlan.account == bill.account.id
        )
    )[0]
    await plan_instalments_run()  # instalment 1: $100
    pay = await client.get("/bills/pay")
    for key in (f"plan-{plan['public_id']}-2", f"plan-{plan['public_id']}-2".ljust(40, "x")):
        answer = await client.post(
            "/bills/pay",
            data={
                "_csrf_token": csrf_from(pay.text),
                "key": key,
                "amount": "other",
                "other": "1.00",
                "number": VISA,
            },
        )
        if flashed(answer) != "pay_no_card":
            assert flashed(answer) == "payment_made"
    await PlanInstalment.update({PlanInstalment.due_on: clinic_today() - timedelta(days=1)}).where(
        (PlanInstalment.plan == plan["id"]) & (PlanInstalment.number == 2)
    )
    await plan_instalments_run()
    keys = [
        row["idempotency_key"]
        for row in await Payment.select(Payment.idempotency_key).where(
            Payment.account == bill.account.id
        )
    ]
    assert all(key.startswith(("att-", "plan-")) for key in keys)
    amounts = sorted(
        row["amount_cents"]
        for row in await Payment.select(Payment.amount_cents).where(
            (Payment.account == bill.account.id) & (Payment.status == "succeeded")
        )
    )
    assert amounts == [100, 10_000, 10_000]  # both instalments charged, and the $1


async def test_guest_pay_needs_the_pay_page_s_attempt_key(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    page_text = await _guest_in(client, bill.statement.code, person.patient.birth_date.isoformat())
    for key in ("", "short", "x" * 70, "a/b" * 12):
        answer = await client.post(
            "/pay/statement",
            data={
                "_csrf_token": csrf_from(page_text),
                "key": key,
                "amount": "full",
                "number": VISA,
            },
        )
        assert flashed(answer) == "pay_no_card"
    assert await Payment.count().where(Payment.account == bill.account.id) == 0


async def test_every_guest_look_at_a_statement_or_receipt_is_audited_on_the_guarantor(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    page_text = await _guest_in(client, bill.statement.code, person.patient.birth_date.isoformat())
    paid = await client.post(
        "/pay/statement",
        data={
            "_csrf_token": csrf_from(page_text),
            "key": _key(page_text),
            "amount": "other",
            "other": "10",
            "number": VISA,
        },
    )
    assert flashed(paid) == "payment_made"
    for _ in range(3):
        assert (await client.get("/pay/statement")).status_code == 200
        assert (await client.get(paid.headers["location"])).status_code == 200
    rows = await AuditEvent.select(
        AuditEvent.action, AuditEvent.patient, AuditEvent.ip, AuditEvent.user_agent
    ).where(AuditEvent.action.is_in(["bills.guest.view", "bills.guest.receipt.view"]))
    mine = [row for row in rows if row["patient"] == person.patient.id]
    assert [row["action"] for row in mine].count("bills.guest.view") == 4
    assert [row["action"] for row in mine].count("bills.guest.receipt.view") == 3
    assert all(row["ip"] and row["user_agent"] for row in mine)


async def test_the_billing_console_audits_a_look_on_every_member_s_record(
    client: AsyncClient,
) -> None:
    parent = await make_person("Ana")
    teen = await make_person("Tess", birth=date(date.today().year - 15, 1, 1))
    bill = await make_bill(teen.patient, guarantor=parent.patient, confidential=True)
    await staff_signed_in(client, role="billing")
    page = await client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    assert page.status_code == 200
    viewed = await AuditEvent.select(AuditEvent.patient).where(
        (AuditEvent.action == "billing.account.view")
        & (AuditEvent.resource_id == bill.account.public_id)
    )
    assert sorted(row["patient"] for row in viewed) == sorted([parent.patient.id, teen.patient.id])
    found = await client.get("/staff/billing", params={"q": bill.statement.code})
    assert found.status_code == 200
    results = await AuditEvent.select(AuditEvent.patient).where(
        (AuditEvent.action == "billing.search.result")
        & (AuditEvent.resource_id == bill.account.public_id)
    )
    assert sorted(row["patient"] for row in results) == sorted([parent.patient.id, teen.patient.id])


async def test_a_refund_is_audited_on_the_record_it_paid_for(client: AsyncClient) -> None:
    person = await make_person()
    await make_bill(person.patient)
    paid = await bill_pay(
        await person.context(), key=new_attempt_key(), choice="full", other="", number=VISA
    )
    await staff_signed_in(client, role="billing")
    home = await client.get("/staff/billing")
    refunded = await client.post(
        f"/staff/billing/payments/{paid.public_id}/refund",
        data={"_csrf_token": csrf_from(home.text), "amount": "5"},
    )
    assert flashed(refunded) == "billing_refunded"
    rows = await AuditEvent.select(AuditEvent.patient).where(
        (AuditEvent.action == "billing.refund") & (AuditEvent.resource_id == paid.public_id)
    )
    assert [row["patient"] for row in rows] == [person.patient.id]


async def test_a_bills_only_caregiver_sees_only_their_person_s_visits_and_no_one_s_card(
    client: AsyncClient,
) -> None:
    dad = await make_person("Dario")
    grandma = await make_person("Gloria")
    sibling = await make_person("Sofia")
    bill = await make_bill(grandma.patient, guarantor=dad.patient)
    await make_bill(sibling.patient, guarantor=dad.patient, account=bill.account)
    paid = await bill_pay(
        await dad.context(),
        key=new_attempt_key(),
        choice="other",
        other="10",
        number="5555 5555 5555 4444",
    )
    helper = await make_account("Helper")
    await grant(helper, grandma.patient, kind="proxy", scope="billing", relationship="other")
    await sign_in(client, Person(account=helper, patient=grandma.patient))
    page = await client.get("/bills")
    assert page.status_code == 200
    assert "For Gloria" in page.text  # the record the grant is for
    assert "For Sofia" not in page.text
    assert page.text.count("Office visit") == 1
    assert "A visit" in page.text  # Sofia's, amounts only
    assert "4444" not in page.text
    receipt = await client.get(f"/bills/receipts/{paid.public_id}")
    assert receipt.status_code == 200
    assert "4444" not in receipt.text
    # The guarantor, signed in as themself, sees the family's visits and their own card.
    client.cookies.clear()
    await sign_in(client, dad)
    page = await client.get("/bills")
    assert "For Sofia" in page.text
    assert "For Gloria" in page.text
    assert "4444" in page.text
    assert "4444" in (await client.get(f"/bills/receipts/{paid.public_id}")).text


async def test_an_adjustment_is_never_more_than_owed_and_a_double_click_posts_once(
    client: AsyncClient,
) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)  # owes $80
    await staff_signed_in(client, role="billing")
    ledger = await client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    token = csrf_from(ledger.text)
    too_much = await client.post(
        f"/staff/billing/accounts/{bill.account.public_id}/adjustments",
        data={
            "_csrf_token": token,
            "key": _key(ledger.text),
            "amount": "5000",
            "reason": "courtesy",
            "note": "",
        },
    )
    assert flashed(too_much) == "pay_adjust_too_much"
    ledger = await client.get(f"/staff/billing/accounts/{bill.account.public_id}")
    for _ in range(2):  # a double click
        adjusted = await client.post(
            f"/staff/billing/accounts/{bill.account.public_id}/adjustments",
            data={
                "_csrf_token": token,
                "key": _key(ledger.text),
                "amount": "50",
                "reason": "courtesy",
                "note": "",
            },
        )
        assert flashed(adjusted) == "billing_adjusted"
    assert await account_balance(bill.account.id) == 8_000 - 5_000
    no_key = await client.post(
        f"/staff/billing/accounts/{bill.account.public_id}/adjustments",
        data={"_csrf_token": token, "amount": "5", "reason": "courtesy", "note": ""},
    )
    assert flashed(no_key) == "pay_form_expired"
    assert await account_balance(bill.account.id) == 3_000


async def test_card_testing_on_guest_pay_stops_after_a_few_declines(client: AsyncClient) -> None:
    person = await make_person()
    bill = await make_bill(person.patient)
    page_text = await _guest_in(client, bill.statement.code, person.patient.birth_date.isoformat())
    token = csrf_from(page_text)
    answers = []
    for _ in range(8):
        answer = await client.post(
            "/pay/statement",
            data={
                "_csrf_token": token,
                "key": new_attempt_key(),
                "amount": "other",
                "other": "1.00",
                "number": "4000 0000 0000 0002",
            },
        )
        assert answer.status_code == 303
        answers.append(flashed(answer))
    assert answers == ["payment_card_declined"] * 5 + ["pay_too_many_declines"] * 3
    assert len(DEMO.answered) == 5
    assert await Payment.count().where(Payment.account == bill.account.id) == 5


async def test_a_signed_in_payer_is_paused_after_a_few_declines(client: AsyncClient) -> None:
    person = await make_person()
    await make_bill(person.patient)
    await sign_in(client, person)
    page = await client.get("/bills/pay")
    answers = []
    for _ in range(6):
        answer = await client.post(
            "/bills/pay",
            data={
                "_csrf_token": csrf_from(page.text),
                "key": new_attempt_key(),
                "amount": "other",
                "other": "1.00",
                "number": "4000 0000 0000 0002",
            },
        )
        answers.append(flashed(answer))
    assert answers == ["payment_card_declined"] * 5 + ["pay_too_many_declines"]
    assert len(DEMO.answered) == 5


def test_only_the_webhook_itself_is_outside_the_csrf_check() -> None:
    csrf = next(
        middleware.kwargs["config"]
        for middleware in create_app().middleware
        if isinstance(middleware, DefineMiddleware)
        and "config" in middleware.kwargs
        and isinstance(middleware.kwargs["config"], CSRFConfig)
    )
    # Litestar looks for the pattern anywhere in the (decoded) path.
    pattern = build_exclude_path_pattern(exclude=csrf.exclude)
    assert pattern is not None
    assert pattern.findall("/bills/webhook")
    for path in (
        "/bills/receipts/x/bills/webhook/check",
        "/bills/webhook/x",
        "/x/bills/webhook",
        "/pay/statement/bills/webhook",
    ):
        assert not pattern.findall(path), path


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
