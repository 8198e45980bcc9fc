"""Bill notices: a statement's "ready" and "due soon" each go once, through the outbox, with
the pay page's link and no amount, visit or name; "due soon" only while something is owed."""

from __future__ import annotations

from datetime import timedelta

from app.clinic import clinic_today
from app.services.bills.notify import bill_notices_send
from app.tables import LedgerEntry, OutboxMessage, Statement
from tests.factories import make_bill, make_reachable_person


async def _sent(phone: str, email: str) -> list[str]:
    rows = await OutboxMessage.select(OutboxMessage.subject, OutboxMessage.body).where(
        OutboxMessage.recipient.is_in([phone, email])
    )
    return [f"{row['subject']} {row['body']}" for row in rows]


async def test_a_statement_is_announced_once_with_the_pay_link_and_no_amount() -> None:
    await bill_notices_send()  # whatever other tests left waiting
    person, phone, email = await make_reachable_person("Odalys")
    bill = await make_bill(person.patient)
    assert await bill_notices_send() >= 1
    sent = await _sent(phone, email)
    assert sent, "no notice was queued"
    assert all("/bills/pay" in text for text in sent)
    for secret in ("$", "80.00", "Odalys", person.patient.family_name, "Office visit"):
        assert all(secret not in text for text in sent), secret
    assert await bill_notices_send() == 0
    assert len(await _sent(phone, email)) == len(sent)
    # Due in three days and still owed: told once more; paid off, never.
    await Statement.update({Statement.due_on: clinic_today() + timedelta(days=3)}).where(
        Statement.id == bill.statement.id
    )
    assert await bill_notices_send() == 1
    assert len(await _sent(phone, email)) > len(sent)


async def test_no_due_notice_for_a_bill_already_paid() -> None:
    await bill_notices_send()
    person, phone, email = await make_reachable_person("Ines")
    bill = await make_bill(person.patient)
    await bill_notices_send()  # "ready"
    before = len(await _sent(phone, email))
    await LedgerEntry.insert(
        LedgerEntry(account=bill.account.id, kind="payment", amount_cents=bill.owed_cents)
    )
    await Statement.update({Statement.due_on: clinic_today() + timedelta(days=2)}).where(
        Statement.id == bill.statement.id
    )
    assert await bill_notices_send() == 0
    assert len(await _sent(phone, email)) == before
