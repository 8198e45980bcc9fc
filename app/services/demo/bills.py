"""The demo clinic's bills: each persona's family has statements in plain words, with what
insurance paid and why the rest is owed, an earlier bill already paid, and (for Maria) a
card kept at the demo processor, so paying takes two taps. Lucas's confidential visit is on
his mother's bill as "A visit", amounts only."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.tables import (
    AccessGrant,
    BillingAccount,
    BillingMember,
    LedgerEntry,
    Patient,
    Payment,
    SavedCard,
    Statement,
)

# Tables to empty before the people they name (the demo's reset).
BILL_TABLES = (LedgerEntry, Payment, SavedCard, Statement, BillingMember, BillingAccount)

# family guarantor mrn: (members' mrns, statement code, [(mrn, service, charge, insurance,
# reason, days ago)]); amounts in cents.
_FAMILIES: dict[str, tuple[tuple[str, ...], str, list[tuple[str, str, int, int, str, int]]]] = {
    "RFH-100001": (
        ("RFH-100001", "RFH-100002", "RFH-100003"),
        "LOPEZ4821",
        [
            ("RFH-100001", "office_visit", 18_000, 10_000, "deductible", 20),
            ("RFH-100002", "well_child", 21_000, 18_500, "copay", 16),
            ("RFH-100003", "follow_up", 14_000, 9_000, "deductible", 12),
        ],
    ),
    "RFH-100004": (
        ("RFH-100004",),
        "CHEN7315",
        [("RFH-100004", "annual_physical", 26_000, 21_000, "coinsurance", 18)],
    ),
    "RFH-100005": (
        ("RFH-100005",),
        "CHEN2290",
        [("RFH-100005", "lab_work", 9_500, 7_500, "copay", 25)],
    ),
    "RFH-100006": (
        ("RFH-100006",),
        "WILSON2046",
        [
            ("RFH-100006", "follow_up", 16_000, 12_000, "copay", 14),
            ("RFH-100006", "lab_work", 12_000, 7_000, "deductible", 14),
        ],
    ),
}


async def seed_bills(today: date) -> None:
    rows = await Patient.select(
        Patient.id, Patient.mrn, Patient.given_name, Patient.family_name
    ).where(Patient.mrn.is_in(list({m for family in _FAMILIES.values() for m in family[0]})))
    patients = {row["mrn"]: row for row in rows}
    for guarantor_mrn, (members, code, lines) in _FAMILIES.items():
        guarantor = patients[guarantor_mrn]
        account = BillingAccount(
            guarantor=guarantor["id"],
            guarantor_name=f"{guarantor['given_name']} {guarantor['family_name']}",
        )
        await BillingAccount.insert(account)
        await BillingMember.insert(
            *(BillingMember(account=account.id, patient=patients[mrn]["id"]) for mrn in members)
        )
        # An earlier bill, paid in the portal.
        told = datetime.combine(today - timedelta(days=70), time(15), tzinfo=UTC)
        earlier = Statement(
            account=account.id,
            code=f"{code}A",
            issued_on=today - timedelta(days=70),
            due_on=today - timedelta(days=40),
            ready_notice_at=told,
            due_notice_at=told,
        )
        current = Statement(
            account=account.id,
            code=code,
            issued_on=today - timedelta(days=8),
            due_on=today + timedelta(days=22),
        )
        await Statement.insert(earlier, current)
        paid_on = datetime.combine(today - timedelta(days=55), time(18), tzinfo=UTC)
        payment = Payment(
            account=account.id,
            idempotency_key=f"demo-{code}",
            amount_cents=4_000,
            status="succeeded",
            channel="portal",
            processor="demo",
            processor_ref=f"demo_seed_{code.lower()}",
            card_brand="Visa",
            card_last4="4242",
            created_at=paid_on,
            completed_at=paid_on,
        )
        await Payment.insert(payment)
        entries = [
            LedgerEntry(
                account=account.id,
                kind="charge",
                amount_cents=9_000,
                patient=guarantor["id"],
                statement=earlier.id,
                service="office_visit",
                reason="copay",
                service_date=today - timedelta(days=80),
            ),
            LedgerEntry(
                account=account.id,
                kind="insurance",
                amount_cents=5_000,
                patient=guarantor["id"],
                statement=earlier.id,
                service="office_visit",
                service_date=today - timedelta(days=80),
            ),
            LedgerEntry(account=account.id, kind="payment", amount_cents=4_000, payment=payment.id),
        ]
        for mrn, service, charge, insurance, reason, days_ago in lines:
            patient_id = patients[mrn]["id"]
            # Lucas's visit was a confidential one (he is 15): his mother sees "A visit".
            hidden = mrn == "RFH-100003"
            line = {
                "account": account.id,
                "patient": patient_id,
                "statement": current.id,
                "service": service,
                "service_date": today - timedelta(days=days_ago),
                "confidential": hidden,
            }
            entries.append(LedgerEntry(kind="charge", amount_cents=charge, reason=reason, **line))
            entries.append(LedgerEntry(kind="insurance", amount_cents=insurance, **line))
        await LedgerEntry.insert(*entries)
    # Maria keeps a card at the demo processor: her next payment is two taps.
    maria = await AccessGrant.select(AccessGrant.account).where(
        (AccessGrant.patient == patients["RFH-100001"]["id"]) & (AccessGrant.kind == "self")
    )
    if maria:
        await SavedCard.insert(
            SavedCard(
                account=maria[0]["account"],
                processor="demo",
                token="pm_card_visa",  # noqa: S106  (the demo processor's test card)
                brand="Visa",
                last4="4242",
            )
        )
