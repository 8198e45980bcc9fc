"""A local stand-in for the part of Stripe's API the portal uses (PaymentIntents created and
confirmed at once, refunds, Checkout Sessions made, read and expired), on 127.0.0.1: it
keeps every request for tests to check, and answers a repeated Idempotency-Key with the
first answer, as Stripe does. `pay` stands in for the person paying on Checkout's page.
`sign` makes a webhook signature the way Stripe does (t=..., v1=HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

SECRET_KEY = "sk_test_portal_fake"
WEBHOOK_SECRET = "whsec_portal_fake"
# PaymentMethod tokens the fake knows, like Stripe's test ones.
DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_insufficientFunds": "insufficient_funds",
}

# Where the fake's Checkout Sessions say their page is (Stripe's real address).
CHECKOUT_PAGE = "https://checkout.stripe.com/c/pay/"

# The shortest time Stripe keeps a Checkout Session open (expires_at must be this far ahead).
SESSION_MIN_SECONDS = 30 * 60

# Every PaymentMethod the fake knows; any other is answered as Stripe does (400,
# resource_missing).
KNOWN_METHODS = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_authenticationRequired", *DECLINES}
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    charges: list[dict[str, Any]] = field(default_factory=list)
    forms: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _working: set[str] = field(default_factory=set)

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        """The first answer for a key again; a key still being worked on: 409, as Stripe."""
        key = seen.headers.get("idempotency-key", "")
        with self._lock:
            if key and key in self.answers:
                if self.forms.get(key, seen.form) != seen.form:
                    # Stripe: a key may be used again only with the same parameters.
                    return 400, {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with"
                            " the same parameters they were first used with.",
                        }
                    }
                return self.answers[key]
            if key in self._working:
                return 409, {"error": {"type": "idempotency_error", "message": "in use"}}
            self._working.add(key)
        time.sleep(0.05)  # the network and the card company take a moment
        try:
            return self._answer(seen, key)
        finally:
            with self._lock:
                self._working.discard(key)

    def _answer(self, seen: Seen, key: str) -> tuple[int, dict[str, Any]]:
        if seen.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return 401, {"error": {"type": "invalid_request_error", "message": "bad key"}}
        if seen.path == "/v1/payment_intents":
            reply = self._intent(seen.form)
        elif seen.path == "/v1/checkout/sessions":
            reply = self._session_make(seen.form)
        elif seen.path.startswith("/v1/checkout/sessions/"):
            reply = self._session_at(seen)
        elif seen.path == "/v1/refunds":
            reply = (
                200,
                {
                    "id": f"re_{next(self._ids)}_{secrets.token_hex(6)}",
                    "object": "refund",
                    "status": "succeeded",
                    "amount": int(seen.form["amount"]),
                },
            )
        else:
            reply = 404, {"error": {"type": "invalid_request_error", "message": "unknown"}}
        if key:
            self.answers[key] = reply
            self.forms[key] = seen.form
        return reply

    def _session_make(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if int(form.get("expires_at") or 0) < time.time() + SESSION_MIN_SECONDS:
            # Stripe: a session must stay open at least 30 minutes from now.
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "param": "expires_at",
                    "message": "The `expires_at` timestamp must be at least 30 minutes"
                    " from Checkout Session creation.",
                }
            }
        session_id = f"cs_test_{next(self._ids)}_{secrets.token_hex(6)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form.get("mode", ""),
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"])
            * int(form.get("line_items[0][quantity]", "1")),
            "currency": form["line_items[0][price_data][currency]"],
            "metadata": {"payment": form.get("metadata[payment]", "")},
            "payment_intent": None,
            "customer": None,
            "success_url": form.get("success_url", ""),
            "cancel_url": form.get("cancel_url", ""),
            "url": f"{CHECKOUT_PAGE}{session_id}",
            "setup_future_usage": form.get("payment_intent_data[setup_future_usage]", ""),
        }
        self.sessions[session_id] = session
        return 200, session

    def _session_at(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        path = seen.path.split("?")[0].removeprefix("/v1/checkout/sessions/")
        session_id, _, action = path.partition("/")
        session = self.sessions.get(session_id)
        if session is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
        if action == "expire":
            if session["status"] != "open":
                return 400, {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Only Checkout Sessions with a status in [open] can be expired.",
                    }
                }
            session["status"] = "expired"
            return 200, session
        if seen.method == "GET":
            return 200, self.session_view(session_id, expand="expand[0]" in seen.query)
        return 404, {"error": {"type": "invalid_request_error", "message": "unknown"}}

    def session_view(self, session_id: str, *, expand: bool = False) -> dict[str, Any]:
        """The session as Stripe shows it (its PaymentIntent and card when expanded)."""
        session = {
            key: value for key, value in self.sessions[session_id].items() if key != "intent"
        }
        intent = self.sessions[session_id].get("intent")
        session["payment_intent"] = (intent if expand else intent["id"]) if intent else None
        return session

    def pay(self, session_id: str, method: str = "pm_card_visa", amount: int | None = None) -> None:
        """The person pays on Stripe's page (with `amount` something else than asked, to
        stand in for a session that does not match)."""
        session = self.sessions[session_id]
        customer = f"cus_{next(self._ids)}" if session["setup_future_usage"] else None
        intent = {
            "id": f"pi_{next(self._ids)}_{secrets.token_hex(6)}",
            "object": "payment_intent",
            "amount": session["amount_total"],
            "status": "succeeded",
            "customer": customer,
            "payment_method": {
                "id": method,
                "object": "payment_method",
                "card": {"brand": "visa", "last4": "4242"},
            },
        }
        session.update(status="complete", payment_status="paid", intent=intent, customer=customer)
        if amount is not None:
            session["amount_total"] = amount
        self.charges.append(intent)

    def _intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        intent = {
            "id": f"pi_{next(self._ids)}_{secrets.token_hex(6)}",
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "metadata": {"payment": form.get("metadata[payment]", "")},
            "status": "succeeded",
        }
        method = form.get("payment_method", "")
        if method not in KNOWN_METHODS:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "payment_method",
                    "message": f"No such PaymentMethod: '{method}'",
                }
            }
        if method == "pm_card_authenticationRequired":
            # The bank wants the person to confirm (3-D Secure): with the person there the
            # PaymentIntent waits for it; off_session Stripe declines it at once.
            if form.get("off_session") != "true":
                intent["status"] = "requires_action"
                return 200, intent
            intent["status"] = "requires_payment_method"
            return 402, {
                "error": {
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "This payment requires authentication.",
                    "payment_intent": intent,
                }
            }
        decline = DECLINES.get(method)
        if decline:
            intent["status"] = "requires_payment_method"
            return 402, {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline,
                    "message": "declined",
                    "payment_intent": intent,
                }
            }
        self.charges.append(intent)
        return 200, intent


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    stamp = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def session_event(fake: FakeStripe, kind: str, session_id: str, event_id: str = "evt_cs") -> bytes:
    """A checkout.session.* event as Stripe sends it (its PaymentIntent as an id only)."""
    return event(kind, fake.session_view(session_id), event_id)


def event(kind: str, intent: dict[str, Any], event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": kind, "data": {"object": intent}}
    ).encode()


@contextmanager
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            seen = Seen(
                method="GET",
                path=path,
                headers={key.lower(): value for key, value in self.headers.items()},
                form={},
                query=dict(parse_qsl(query)),
            )
            fake.requests.append(seen)
            if seen.headers.get("authorization") != f"Bearer {SECRET_KEY}":
                status, reply = 401, {"error": {"type": "invalid_request_error"}}
            else:
                with fake._lock:
                    status, reply = fake._session_at(seen)
            self._reply(status, reply)

        def _reply(self, status: int, reply: dict[str, Any]) -> None:
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            seen = Seen(
                method="POST",
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                form=dict(parse_qsl(body)),
            )
            fake.requests.append(seen)
            status, reply = fake.answer(seen)
            self._reply(status, reply)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
