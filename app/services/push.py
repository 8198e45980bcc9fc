"""Web Push: the VAPID key the browser subscribes with, and each device's subscription.

Payloads never carry health data: a title such as "You have a new message", a link to the
screen, and a tag so the same event never shows twice (docs/security.md)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.access import Actor
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.services.facts import record_fact
from app.services.outbox import outbox_enqueue
from app.tables import PushSubscription

# A payload's limit is about 4 KB; ours stay far below, as a few hundred bytes at most.
MAX_PAYLOAD_BYTES = 512


class SubscriptionError(ValueError):
    """The browser sent a subscription we will not use (shape, or a push service we do
    not know: our server would be posting to an address a client chose)."""


@cache
def vapid_public_key(private_pem: str) -> str:
    """The applicationServerKey for pushManager.subscribe(): the raw P-256 point, base64url."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def endpoint_allowed(endpoint: str, hosts: tuple[str, ...]) -> bool:
    """HTTPS to a known push service (a host, or ".suffix" for its subdomains). Plain HTTP
    only to a loopback host that is listed itself (tests run a push service locally)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if not host:
        return False
    listed = any(
        host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in hosts
    )
    if parts.scheme == "https":
        return listed
    return parts.scheme == "http" and listed and host in {"127.0.0.1", "localhost", "::1"}


def payload(*, title: str, body: str, url: str, tag: str) -> str:
    """The JSON the service worker shows. Only a screen of this portal, never health data."""
    if not url.startswith("/") or url.startswith("//"):
        raise ValueError(url)
    text = json.dumps({"title": title, "body": body, "url": url, "tag": tag}, ensure_ascii=False)
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError("payload too long")
    return text


@dataclass(frozen=True)
class DeviceSubscription:
    public_id: str
    device_name: str
    created_at: datetime
    last_success_at: datetime | None


async def subscription_save(
    *,
    actor: Actor,
    endpoint: str,
    p256dh: str,
    auth: str,
    device_name: str,
    hosts: tuple[str, ...],
) -> str:
    """Keep this device's subscription (a device subscribes once: the same endpoint moves to
    the account that signed in on it last)."""
    if not endpoint_allowed(endpoint, hosts) or len(endpoint) > 1000:
        raise SubscriptionError("endpoint")
    for key in (p256dh, auth):
        if not key or len(key) > 200 or not all(c.isalnum() or c in "-_=" for c in key):
            raise SubscriptionError("keys")
    async with write_transaction():
        existing = (
            await PushSubscription.select(PushSubscription.id, PushSubscription.public_id)
            .where(PushSubscription.endpoint == endpoint)
            .first()
        )
        if existing:
            await PushSubscription.update(
                {
                    PushSubscription.account: actor.account_id,
                    PushSubscription.p256dh: p256dh,
                    PushSubscription.auth: auth,
                    PushSubscription.device_name: device_name[:80],
                }
            ).where(PushSubscription.id == existing["id"])
            public_id = str(existing["public_id"])
        else:
            row = PushSubscription(
                account=actor.account_id,
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
                device_name=device_name[:80],
            )
            await PushSubscription.insert(row)
            public_id = str(row.public_id)
            if actor.acting_patient_id is not None:
                await record_fact("push_enabled", actor.acting_patient_id, channel="portal")
        await audit_record(
            actor=actor,
            action="push.subscribed",
            resource_type="PushSubscription",
            resource_id=public_id,
        )
    return public_id


async def subscriptions_list(*, actor: Actor) -> list[DeviceSubscription]:
    rows = await (
        PushSubscription.select(
            PushSubscription.public_id,
            PushSubscription.device_name,
            PushSubscription.created_at,
            PushSubscription.last_success_at,
        )
        .where(PushSubscription.account == actor.account_id)
        .order_by(PushSubscription.created_at)
    )
    return [DeviceSubscription(**row) for row in rows]


async def subscription_remove(*, actor: Actor, public_id: str) -> None:
    async with write_transaction():
        removed = (
            await PushSubscription.delete()
            .where(
                PushSubscription.public_id == public_id,
                PushSubscription.account == actor.account_id,
            )
            .returning(PushSubscription.id)
        )
        if not removed:
            raise NotFoundError(public_id)
        await audit_record(
            actor=actor,
            action="push.unsubscribed",
            resource_type="PushSubscription",
            resource_id=public_id,
        )


async def push_enqueue(
    *,
    account_id: int,
    title: str,
    body: str,
    url: str,
    tag: str,
    not_before: datetime | None = None,
    kind: str = "",
    notice: str | None = None,
) -> int:
    """Queue one push per device of the account (inside the caller's transaction); the
    number queued, 0 when the account has no device subscribed. `not_before` holds them
    (quiet hours); `notice` groups them for the fallback when all of them give up."""
    devices = await PushSubscription.select(PushSubscription.public_id).where(
        PushSubscription.account == account_id
    )
    text = payload(title=title, body=body, url=url, tag=tag)
    for device in devices:
        await outbox_enqueue(
            channel="push",
            recipient=str(device["public_id"]),
            subject=title,
            body=text,
            not_before=not_before,
            kind=kind,
            account_id=account_id,
            notice=notice,
        )
    return len(devices)
