"""Outbound delivery adapters. Each sends one message and says whether a failure may be
retried, or the recipient is gone for good; the outbox decides what follows. Adapters keep no
tables: what they need to reach a recipient comes with the message."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PushDevice:
    """Where a push subscription points, and the keys its payload is encrypted to."""

    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class Outgoing:
    channel: str
    recipient: str
    subject: str
    body: str
    idempotency_key: str
    device: PushDevice | None = None  # a push's subscription (the outbox looks it up)


class DeliveryError(Exception):
    """A failed send. `permanent` failures are not retried; `gone` ones (a push subscription
    the push service no longer knows) will never succeed, so the recipient can be forgotten;
    `retry_after` (seconds) is the provider's own wish, when it gave one."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        gone: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or gone
        self.gone = gone
        self.retry_after = retry_after


class Channel(Protocol):
    async def send(self, message: Outgoing) -> str:
        """Deliver the message; return the provider's id for it."""
        ...


def masked(recipient: str) -> str:
    """For logs: enough to tell messages apart, not enough to identify anyone."""
    if "@" in recipient:
        name, _, domain = recipient.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"***{recipient[-4:]}"


# Demo mode only: what the console adapters "sent", by outbox key. It stands in for the
# person's phone and inbox, so the demo's Outbox page can show a text as it was received after
# the outbox row's copy is removed. In memory, bounded, gone at restart.
DEMO_KEEP = 300
_demo_received: OrderedDict[str, str] = OrderedDict()


def demo_receive(message: Outgoing) -> None:
    _demo_received[message.idempotency_key] = message.body
    while len(_demo_received) > DEMO_KEEP:
        _demo_received.popitem(last=False)


def demo_received(key: str) -> str | None:
    return _demo_received.get(key)
