"""Stripe through the official `stripe` package: a PaymentIntent per payment, confirmed at
once with the card's PaymentMethod token, with our payment's idempotency key as Stripe's
Idempotency-Key (so a retry after a time-out never charges twice), and webhooks read only
once their signature checks out. The API's address is a setting, so tests point it at a
local server that checks what we send."""

from __future__ import annotations

from typing import Any

import stripe

from app.services.bills.processors import (
    ChargeOutcome,
    ProcessorBusyError,
    ProcessorRetryError,
    ProcessorTimeoutError,
    WebhookEvent,
    WebhookRefusedError,
)

# Stripe's decline codes that have a plain-language reason of their own; others are
# "declined".
KNOWN_DECLINES = frozenset(
    {"card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error"}
)


def _outcome(intent: Any) -> ChargeOutcome:
    status = intent.get("status", "")
    if status == "succeeded":
        return ChargeOutcome(status="succeeded", processor_ref=intent["id"])
    if status in ("requires_action", "requires_confirmation"):
        return ChargeOutcome(status="action_required", processor_ref=intent["id"])
    error = intent.get("last_payment_error") or {}
    return ChargeOutcome(
        status="declined", processor_ref=intent["id"], decline_reason=_reason_of(error)
    )


def _reason_of(error: Any) -> str:
    code = (error.get("decline_code") or error.get("code") or "") if error else ""
    return code if code in KNOWN_DECLINES else "card_declined"


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's httpx transport, handing the encoded form to httpx as `content` (httpx
    deprecates raw bytes passed as `data`, and our tests treat warnings as errors)."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        elif not kwargs.get("data"):
            kwargs.pop("data", None)
        return args, kwargs


class StripeProcessor:
    name = "stripe"

    def __init__(self, *, secret_key: str, webhook_secret: str, base_url: str) -> None:
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": base_url.rstrip("/")},
            http_client=_HTTPXClient(timeout=20),
            # We retry ourselves, with the same key, when the person taps again.
            max_network_retries=0,
        )

    async def charge(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        card_token: str,
        payment_public_id: str,
    ) -> ChargeOutcome:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": amount_cents,
                    "currency": currency,
                    "payment_method": card_token,
                    "confirm": True,
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    "metadata": {"payment": payment_public_id},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as error:
            body: dict[str, Any] = error.json_body if isinstance(error.json_body, dict) else {}
            details: dict[str, Any] = body.get("error") or {}
            intent_data = details.get("payment_intent") or {}
            return ChargeOutcome(
                status="declined",
                processor_ref=str(intent_data.get("id") or ""),
                decline_reason=_reason_of(details),
            )
        except stripe.IdempotencyError as error:
            raise ProcessorBusyError(idempotency_key) from error
        except stripe.InvalidRequestError:
            # A PaymentMethod Stripe does not know (or cannot use): nothing was charged.
            return ChargeOutcome(
                status="declined", processor_ref="", decline_reason="card_declined"
            )
        except (stripe.AuthenticationError, stripe.PermissionError):
            # Our keys are wrong or lack a right: nothing was charged; the person is told
            # the card company had a problem and may try again later.
            return ChargeOutcome(
                status="declined", processor_ref="", decline_reason="processing_error"
            )
        except stripe.RateLimitError as error:
            raise ProcessorBusyError(idempotency_key) from error
        except stripe.APIConnectionError as error:
            raise ProcessorTimeoutError(idempotency_key) from error
        except stripe.APIError as error:
            # 409: a request with this key is still at work; 5xx: the answer is unknown.
            # Either way asking again with the same key is safe.
            if error.http_status == 409:
                raise ProcessorBusyError(idempotency_key) from error
            raise ProcessorTimeoutError(idempotency_key) from error
        return _outcome(intent.to_dict())

    async def refund(self, *, processor_ref: str, amount_cents: int, idempotency_key: str) -> str:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={"payment_intent": processor_ref, "amount": amount_cents},
                options={"idempotency_key": idempotency_key},
            )
        except (stripe.IdempotencyError, stripe.RateLimitError) as error:
            # Another refund of this payment with other amounts is at work (same key, other
            # parameters): nothing was refunded by this request.
            raise ProcessorRetryError(idempotency_key) from error
        except stripe.APIConnectionError as error:
            raise ProcessorTimeoutError(idempotency_key) from error
        except stripe.APIError as error:
            if error.http_status == 409:
                raise ProcessorBusyError(idempotency_key) from error
            raise ProcessorTimeoutError(idempotency_key) from error
        return str(refund["id"])

    def webhook(self, payload: bytes, signature: str) -> WebhookEvent:
        if not self.webhook_secret:
            raise WebhookRefusedError("no webhook secret is set")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise WebhookRefusedError(str(error)) from error
        intent = event.to_dict()["data"]["object"]
        payment = (intent.get("metadata") or {}).get("payment", "")
        outcome: ChargeOutcome | None = None
        if event["type"] in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            outcome = _outcome(intent)
        return WebhookEvent(
            event_id=str(event.id),
            payment_public_id=str(payment),
            processor_ref=str(intent.get("id", "")),
            outcome=outcome,
        )
