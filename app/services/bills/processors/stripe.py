"""Stripe through the official `stripe` package: a PaymentIntent per payment, confirmed at
once with the card's PaymentMethod token, with our payment's idempotency key as Stripe's
Idempotency-Key (so a retry after a time-out never charges twice), and webhooks read only
once their signature checks out. The API's address is a setting, so tests point it at a
local server that checks what we send.

A card the person types in is entered on Stripe Checkout, Stripe's own page (a Checkout
Session per payment, with the same Idempotency-Key), so no card field and no script of
Stripe's is on ours. Stripe is told the amount, a generic line ("<clinic> statement") and
our payment's public id, nothing about the person or their care. A card kept from Checkout
belongs to the Stripe Customer Checkout made for it: its token is "cus_...:pm_..."."""

from __future__ import annotations

from typing import Any

import stripe

from app.services.bills.processors import (
    ChargeOutcome,
    CheckoutSession,
    ProcessorBusyError,
    ProcessorRefusedError,
    ProcessorRetryError,
    ProcessorTimeoutError,
    WebhookEvent,
    WebhookRefusedError,
)

# Stripe's decline codes that have a plain-language reason of their own; others are
# "declined".
KNOWN_DECLINES = frozenset(
    {
        "card_declined",
        "insufficient_funds",
        "expired_card",
        "incorrect_cvc",
        "processing_error",
        # A plan's charge (off_session) whose bank still wants the person to confirm it.
        "authentication_required",
    }
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


# Where Stripe Checkout's pages are: a session's url must lead there and nowhere else (the
# CSP's form-action allows only this origin besides our own).
CHECKOUT_ORIGIN = "https://checkout.stripe.com"
# Card brands as Stripe names them, as a receipt shows them.
BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


def _id_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _checkout_outcome(session: dict[str, Any], event_type: str = "") -> ChargeOutcome | None:
    intent = session.get("payment_intent")
    intent_id = _id_of(intent)
    if event_type == "checkout.session.async_payment_failed":
        return ChargeOutcome(
            status="failed", processor_ref=intent_id, decline_reason="card_declined"
        )
    if session.get("status") == "complete" and session.get("payment_status") == "paid":
        brand, last4 = "", ""
        method = intent.get("payment_method") if isinstance(intent, dict) else None
        if isinstance(method, dict):
            card = method.get("card") or {}
            brand = BRANDS.get(str(card.get("brand") or ""), str(card.get("brand") or "").title())
            last4 = str(card.get("last4") or "")
        return ChargeOutcome(
            status="succeeded",
            processor_ref=intent_id,
            card_brand=brand[:20],
            card_last4=last4[-4:],
        )
    if session.get("status") == "expired":
        return ChargeOutcome(status="cancelled", processor_ref="")
    return None


def _checkout_session(session: dict[str, Any], event_type: str = "") -> CheckoutSession:
    intent = session.get("payment_intent")
    method = _id_of(intent.get("payment_method")) if isinstance(intent, dict) else ""
    customer = _id_of(session.get("customer")) or (
        _id_of(intent.get("customer")) if isinstance(intent, dict) else ""
    )
    return CheckoutSession(
        session_id=str(session.get("id") or ""),
        url=str(session.get("url") or ""),
        status=str(session.get("status") or ""),
        amount_cents=int(session.get("amount_total") or 0),
        currency=str(session.get("currency") or ""),
        payment_public_id=str((session.get("metadata") or {}).get("payment", "")),
        outcome=_checkout_outcome(session, event_type),
        card_token=f"{customer}:{method}" if customer and method else method,
        refunded_cents=_refunded_of(intent),
    )


def _refunded_of(intent: Any) -> int:
    """What was given back of a PaymentIntent's charge (its latest_charge, when expanded)."""
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    return int(charge.get("amount_refunded") or 0) if isinstance(charge, dict) else 0


def _customer_and_method(card_token: str) -> dict[str, str]:
    """A kept card's token as Stripe wants it: a card kept through Checkout belongs to a
    Customer and is used with it."""
    customer, _, method = card_token.rpartition(":")
    return (
        {"customer": customer, "payment_method": method} if customer else {"payment_method": method}
    )


# Checkout's answers that mean "nothing was made, and asking again will not help".
_REFUSED = (stripe.AuthenticationError, stripe.PermissionError, stripe.InvalidRequestError)


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
        off_session: bool = False,
    ) -> ChargeOutcome:
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency,
            **_customer_and_method(card_token),
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {"payment": payment_public_id},
        }
        if off_session:
            # A merchant-initiated charge on a card kept for it (Checkout's
            # setup_future_usage=off_session): banks may let it through without asking the
            # person, who is not there; if one still asks, Stripe declines it.
            params["off_session"] = True
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params=params,  # type: ignore[arg-type]
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
        except _REFUSED as error:
            # Already given back in Stripe's dashboard, more than is left, our keys: Stripe
            # says no for good, and nothing was refunded by this request.
            raise ProcessorRefusedError(type(error).__name__) from error
        except stripe.APIError as error:
            if error.http_status == 409:
                raise ProcessorBusyError(idempotency_key) from error
            raise ProcessorTimeoutError(idempotency_key) from error
        return str(refund["id"])

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
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount_cents,
                        "product_data": {"name": description},
                    },
                }
            ],
            "metadata": {"payment": payment_public_id},
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
        }
        if keep_card:
            params["payment_intent_data"] = {"setup_future_usage": "off_session"}
        try:
            session = await self.client.v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except Exception as error:
            raise self._checkout_error(error, idempotency_key) from error
        made = _checkout_session(session.to_dict())
        if not made.url.startswith(CHECKOUT_ORIGIN + "/"):
            raise ProcessorRefusedError("a Checkout Session that does not lead to Stripe")
        return made

    async def checkout_status(self, session_id: str) -> CheckoutSession:
        try:
            session = await self.client.v1.checkout.sessions.retrieve_async(
                session_id,
                params={
                    "expand": ["payment_intent.payment_method", "payment_intent.latest_charge"]
                },
            )
        except Exception as error:
            raise self._checkout_error(error, session_id) from error
        return _checkout_session(session.to_dict())

    async def checkout_expire(self, session_id: str) -> CheckoutSession:
        try:
            await self.client.v1.checkout.sessions.expire_async(session_id)
        except stripe.InvalidRequestError:
            pass  # no longer open (paid, or expired already): its state tells which
        except Exception as error:
            raise self._checkout_error(error, session_id) from error
        return await self.checkout_status(session_id)

    @staticmethod
    def _checkout_error(error: Exception, key: str) -> Exception:
        if isinstance(error, stripe.IdempotencyError | stripe.RateLimitError):
            return ProcessorBusyError(key)
        if isinstance(error, _REFUSED):
            return ProcessorRefusedError(type(error).__name__)
        if isinstance(error, stripe.APIError) and error.http_status == 409:
            return ProcessorBusyError(key)
        if isinstance(error, stripe.StripeError):
            return ProcessorTimeoutError(key)
        return error

    def webhook(self, payload: bytes, signature: str) -> WebhookEvent:
        if not self.webhook_secret:
            raise WebhookRefusedError("no webhook secret is set")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise WebhookRefusedError(str(error)) from error
        intent = event.to_dict()["data"]["object"]
        if str(event["type"]).startswith("checkout.session."):
            session = _checkout_session(intent, str(event["type"]))
            return WebhookEvent(
                event_id=str(event.id),
                payment_public_id=session.payment_public_id,
                processor_ref=session.session_id,
                outcome=session.outcome,
                checkout=session,
            )
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
