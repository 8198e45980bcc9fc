"""The demo processor: no money moves. Test card numbers answer like a real processor's test
mode, and each card becomes a token (as a processor's hosted form would make one), so the
number itself goes no further than this module's lookup.

It keeps, in memory, the outcome of each idempotency key, as a processor does on its side:
asking again with the same key gives the same answer and never a second charge. The
"time out" card succeeds on the processor's side but the answer is lost, the case that makes
idempotency keys necessary.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from app.services.bills.processors import (
    ChargeOutcome,
    CheckoutSession,
    ProcessorRefusedError,
    ProcessorTimeoutError,
    WebhookEvent,
    WebhookRefusedError,
)

# Test card numbers and the token each becomes.
TEST_CARDS: dict[str, str] = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_insufficientFunds",
    "4000000000000069": "pm_card_expiredCard",
    "4000002500003155": "pm_card_authenticationRequired",
    "4000000000000119": "pm_card_timeout",
}
# The test card whose answer gets lost once (a test card's name, not a secret).
TIMEOUT_TOKEN = "pm_card_timeout"  # noqa: S105
# token: (outcome, decline reason, brand, last four)
TOKENS: dict[str, tuple[str, str, str, str]] = {
    "pm_card_visa": ("succeeded", "", "Visa", "4242"),
    "pm_card_mastercard": ("succeeded", "", "Mastercard", "4444"),
    "pm_card_chargeDeclined": ("declined", "card_declined", "Visa", "0002"),
    "pm_card_insufficientFunds": ("declined", "insufficient_funds", "Visa", "9995"),
    "pm_card_expiredCard": ("declined", "expired_card", "Visa", "0069"),
    "pm_card_authenticationRequired": ("action_required", "", "Visa", "3155"),
    "pm_card_timeout": ("succeeded", "", "Visa", "0119"),
}


def demo_card_token(number: str) -> str | None:
    """The token for a test card number (spaces and dashes ignored); None for any other
    number: the demo takes no real card."""
    digits = "".join(char for char in number if char.isdigit())
    return TEST_CARDS.get(digits)


@dataclass
class DemoProcessor:
    name: str = "demo"
    # idempotency key -> outcome, and every charge made (for tests: "one charge").
    answered: dict[str, ChargeOutcome] = field(default_factory=dict)
    charges: list[tuple[str, int]] = field(default_factory=list)
    refunds: list[tuple[str, int]] = field(default_factory=list)
    # Keys whose answer was already "lost" once (the time-out card).
    timed_out: set[str] = field(default_factory=set)

    async def charge(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        card_token: str,
        payment_public_id: str,
        off_session: bool = False,
    ) -> ChargeOutcome:
        known = self.answered.get(idempotency_key)
        if known is None:
            status, reason, brand, last4 = TOKENS.get(
                card_token, ("declined", "card_declined", "", "")
            )
            known = ChargeOutcome(
                status=status,
                processor_ref=f"demo_{secrets.token_hex(8)}",
                decline_reason=reason,
                card_brand=brand,
                card_last4=last4,
            )
            self.answered[idempotency_key] = known
            if status == "succeeded":
                self.charges.append((idempotency_key, amount_cents))
        await asyncio.sleep(0)  # a network call would yield here too
        if card_token == TIMEOUT_TOKEN and idempotency_key not in self.timed_out:
            self.timed_out.add(idempotency_key)
            raise ProcessorTimeoutError(idempotency_key)
        return known

    async def refund(self, *, processor_ref: str, amount_cents: int, idempotency_key: str) -> str:
        self.refunds.append((processor_ref, amount_cents))
        return f"demo_re_{secrets.token_hex(8)}"

    def webhook(self, payload: bytes, signature: str) -> WebhookEvent:
        raise WebhookRefusedError("the demo processor sends no webhooks")

    async def checkout(self, **_: object) -> CheckoutSession:
        raise ProcessorRefusedError("the demo has its own card form, no hosted page")

    async def checkout_status(self, session_id: str) -> CheckoutSession:
        raise ProcessorRefusedError("the demo has no hosted page")

    async def checkout_expire(self, session_id: str) -> CheckoutSession:
        raise ProcessorRefusedError("the demo has no hosted page")

    def reset(self) -> None:
        self.answered.clear()
        self.charges.clear()
        self.refunds.clear()
        self.timed_out.clear()


DEMO = DemoProcessor()
