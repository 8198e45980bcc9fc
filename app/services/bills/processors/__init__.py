"""Card processors behind one small interface: charge with an idempotency key, refund, and
read a signed webhook. The demo processor (the default) moves no money and answers test
card numbers as the big processors' test modes do; Stripe uses PaymentIntents, and Stripe
Checkout (its hosted payment page) for a card the person types in.

A processor gets a card as the processor's own token (a saved card, or one its hosted form
made); the demo form's number goes to the demo processor in memory only, never further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.settings import Settings, get_settings


class ProcessorTimeoutError(Exception):
    """No answer in time: the charge may or may not have happened. Asking again with the
    same idempotency key finds out without charging twice."""


class ProcessorBusyError(Exception):
    """The processor is still working on a request with this idempotency key."""


class ProcessorRetryError(Exception):
    """The processor refused this request for now (another with the same key but other
    amounts is at work, or too many requests): nothing was done; try again."""


class ProcessorRefusedError(Exception):
    """The processor said no for good (our keys, a request it cannot take): nothing was made,
    and asking again would get the same answer."""


class WebhookRefusedError(Exception):
    """A webhook whose signature does not check out (or that cannot be read)."""


@dataclass(frozen=True)
class ChargeOutcome:
    # succeeded | declined | action_required
    status: str
    processor_ref: str
    # A plain-language reason code when declined (bills.words DECLINE_REASONS).
    decline_reason: str = ""
    card_brand: str = ""
    card_last4: str = ""


@dataclass(frozen=True)
class CheckoutSession:
    """A hosted payment page for one of our payments (a Stripe Checkout Session), as the
    processor holds it now."""

    session_id: str
    url: str
    # open | complete | expired
    status: str
    amount_cents: int
    currency: str
    payment_public_id: str
    # What it means for our payment: succeeded (paid), cancelled (expired unpaid), failed
    # (a delayed payment that did not go through); None while it is still open or waiting.
    outcome: ChargeOutcome | None
    # The card to keep, when the person asked: the processor's token for it.
    card_token: str = ""
    # How much of what it took has been given back (by us, or in the processor's own
    # dashboard), as the processor says now.
    refunded_cents: int = 0


@dataclass(frozen=True)
class WebhookEvent:
    """What a webhook says about one of our payments (by our payment's public id)."""

    event_id: str
    payment_public_id: str
    processor_ref: str
    outcome: ChargeOutcome | None  # None: an event we do not act on
    # Set for news of a hosted payment page (the outcome is then the session's).
    checkout: CheckoutSession | None = None


class Processor(Protocol):
    name: str

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
        """Charge a kept card. `off_session`: the person is not there to answer their bank
        (a plan's monthly charge), so the bank is told it is a charge they agreed to."""
        ...

    async def refund(self, *, processor_ref: str, amount_cents: int, idempotency_key: str) -> str:
        """Give back part or all of a charge; the refund's id."""
        ...

    async def checkout(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        payment_public_id: str,
        description: str,
        keep_card: bool,
        success_url: str,
        cancel_url: str,
        expires_at: int,
    ) -> CheckoutSession:
        """A hosted payment page for one payment (the same one again for the same key)."""
        ...

    async def checkout_status(self, session_id: str) -> CheckoutSession:
        """The hosted payment page's state now, with the card paid with."""
        ...

    async def checkout_expire(self, session_id: str) -> CheckoutSession:
        """Close a hosted payment page that was not paid on (so it can no longer be), and
        its state now (complete, if the payment got there first)."""
        ...

    def webhook(self, payload: bytes, signature: str) -> WebhookEvent: ...


def processor_for(settings: Settings | None = None) -> Processor:
    settings = settings or get_settings()
    if settings.payment_processor == "stripe":
        from app.services.bills.processors.stripe import StripeProcessor

        return StripeProcessor(
            secret_key=settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            base_url=settings.stripe_base_url,
        )
    from app.services.bills.processors.demo import DEMO

    return DEMO
