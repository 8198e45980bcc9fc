"""Bills: the ledger and statements (ledger.py), paying once and only once (payments.py),
guest pay from a statement's code (guest.py), the billing office's console (staff.py),
statement and payment-due notices (notify.py), and the card processors behind one small
interface (processors/)."""

from app.services.bills.ledger import HomeBill, bills_home, bills_view
from app.services.bills.payments import (
    PaymentRefusedError,
    bill_pay,
    bill_payment_check,
    bill_receipt,
    pay_page,
    payment_webhook,
)

__all__ = [
    "HomeBill",
    "PaymentRefusedError",
    "bill_pay",
    "bill_payment_check",
    "bill_receipt",
    "bills_home",
    "bills_view",
    "pay_page",
    "payment_webhook",
]
