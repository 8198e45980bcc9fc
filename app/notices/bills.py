"""Bills: a new statement is ready, and a payment is due soon. Each links straight to the
pay page (which asks the reader to sign in first); none says an amount, a visit or
anything about anyone's health."""

from __future__ import annotations

from dataclasses import replace

from app.i18n import N_
from app.notices.delivery import Words, notify_patient
from app.notices.words import Message, Say, Wording
from app.settings import get_settings

STATEMENT_READY = Message(
    "statement_ready",
    subject=N_("You have a new bill from %(clinic)s."),
    text=N_("%(clinic)s: you have a new bill. See it or pay it here: %(link)s"),
)
PAYMENT_DUE = Message(
    "payment_due",
    subject=N_("A bill from %(clinic)s is due soon."),
    text=N_("%(clinic)s: a bill is due soon. See it or pay it here: %(link)s"),
)
PLAN_CHARGE_SOON = Message(
    "plan_charge_soon",
    subject=N_("Your next payment plan charge to %(clinic)s is in a few days."),
    text=N_("%(clinic)s: your next payment plan charge is in a few days. See your plan: %(link)s"),
)
PAY_PATH = "/bills/pay"
BILLS_PATH = "/bills"


def pay_link(path: str = PAY_PATH) -> str:
    return f"{get_settings().base_url}{path}"


def _linked(message: Message, path: str = PAY_PATH) -> Words:
    """The text and email carry the page's link; a push opens it."""

    def words(_: Say) -> Wording:
        texted = message.words(_, link=pay_link(path))
        return replace(
            texted,
            push_title=texted.email_subject,
            push_body=_("Open the patient portal to see it."),
        )

    return words


async def send_statement_ready(*, patient_id: int, statement_public_id: str) -> int:
    """Everyone who follows the record's bills hears a statement is ready; how many."""
    return await notify_patient(
        patient_id=patient_id,
        category="bills",
        event=f"statement-{statement_public_id}",
        words=_linked(STATEMENT_READY),
        url=PAY_PATH,
    )


async def send_payment_due(*, patient_id: int, statement_public_id: str) -> int:
    """Everyone who follows the record's bills hears its statement is due soon."""
    return await notify_patient(
        patient_id=patient_id,
        category="bills",
        event=f"due-{statement_public_id}",
        words=_linked(PAYMENT_DUE),
        url=PAY_PATH,
    )


async def send_plan_charge_soon(*, patient_id: int, event: str) -> int:
    """The guarantor's record hears a plan's next charge is a few days away (no amount)."""
    return await notify_patient(
        patient_id=patient_id,
        category="bills",
        event=event,
        words=_linked(PLAN_CHARGE_SOON, BILLS_PATH),
        url=BILLS_PATH,
    )
