"""The outbox: messages are written with what caused them and delivered later, at least once.

A worker claims due rows under a lease, sends them, and marks each sent, or schedules a
retry with exponential backoff (or the provider's Retry-After), or gives up after
MAX_ATTEMPTS. A worker that dies mid-delivery loses nothing: its lease runs out and another
worker claims the row again, with the same idempotency key.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.channels import Channel, DeliveryError, Outgoing
from app.db import engine, write_transaction
from app.services.clock import utcnow
from app.tables import OutboxMessage

log = logging.getLogger("portal.outbox")

CHANNELS = ("sms", "email", "push")
MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=2)


@dataclass(frozen=True)
class Claimed:
    id: int
    message: Outgoing
    attempts: int


async def outbox_enqueue(
    *,
    channel: str,
    recipient: str,
    subject: str = "",
    body: str,
    key: str | None = None,
    not_before: datetime | None = None,
) -> str:
    """Queue a message inside the caller's transaction; returns its idempotency key.

    Messages carry no health information: they say that something is waiting in the portal."""
    if channel not in CHANNELS:
        raise ValueError(channel)
    key = key or secrets.token_hex(16)
    await OutboxMessage.insert(
        OutboxMessage(
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            idempotency_key=key,
            # Quiet hours: a message may wait until the person's morning.
            next_attempt_at=max(utcnow(), not_before) if not_before else utcnow(),
        )
    )
    return key


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait before the next try: the provider's wish, else 30 s doubling, with jitter."""
    if retry_after is not None:
        return timedelta(seconds=retry_after)
    seconds = min(
        BASE_BACKOFF.total_seconds() * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds()
    )
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


async def outbox_claim(*, worker: str, limit: int, lease: timedelta) -> list[Claimed]:
    """Take up to `limit` due rows for this worker. Two workers never hold the same row:
    PostgreSQL skips rows another transaction has locked; SQLite runs one writer at a time."""
    now = utcnow()
    lock = "" if engine().engine_type == "sqlite" else "FOR UPDATE SKIP LOCKED"
    async with write_transaction():
        rows = await OutboxMessage.raw(
            f"""
            UPDATE outbox SET lease_owner = {{}}, lease_until = {{}}, attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM outbox
                WHERE status = 'pending' AND next_attempt_at <= {{}}
                  AND (lease_until IS NULL OR lease_until < {{}})
                ORDER BY next_attempt_at, id
                LIMIT {{}} {lock}
            )
            RETURNING id, channel, recipient, subject, body, idempotency_key, attempts
            """,  # noqa: S608 - only the fixed lock clause is formatted in; values are bound
            worker,
            now + lease,
            now,
            now,
            limit,
        )
    return [
        Claimed(
            id=row["id"],
            attempts=row["attempts"],
            message=Outgoing(
                channel=row["channel"],
                recipient=row["recipient"],
                subject=row["subject"],
                body=row["body"],
                idempotency_key=row["idempotency_key"],
            ),
        )
        for row in rows
    ]


async def _finish(claimed: Claimed, worker: str, values: dict[Any, Any]) -> None:
    """Record the outcome, only if this worker still holds the lease."""
    async with write_transaction():
        await OutboxMessage.update(values).where(
            OutboxMessage.id == claimed.id, OutboxMessage.lease_owner == worker
        )


async def outbox_deliver(
    *, channels: Mapping[str, Channel], worker: str, limit: int = 20, lease: timedelta
) -> int:
    """Claim and deliver one batch; returns how many rows were claimed."""
    batch = await outbox_claim(worker=worker, limit=limit, lease=lease)
    for claimed in batch:
        await _deliver_one(claimed, channels, worker)
    return len(batch)


async def _deliver_one(claimed: Claimed, channels: Mapping[str, Channel], worker: str) -> None:
    released: dict[Any, Any] = {OutboxMessage.lease_owner: None, OutboxMessage.lease_until: None}
    try:
        provider_id = await channels[claimed.message.channel].send(claimed.message)
    except DeliveryError as error:
        dead = error.permanent or claimed.attempts >= MAX_ATTEMPTS
        retry_at: datetime = utcnow() + backoff(claimed.attempts, error.retry_after)
        log.warning(
            "outbox %s %s attempt %d failed: %s%s",
            claimed.message.channel,
            claimed.id,
            claimed.attempts,
            error.reason,
            " (giving up)" if dead else "",
        )
        await _finish(
            claimed,
            worker,
            {
                **released,
                OutboxMessage.status: "dead" if dead else "pending",
                OutboxMessage.next_attempt_at: retry_at,
                OutboxMessage.last_error: error.reason[:200],
            },
        )
        return
    await _finish(
        claimed,
        worker,
        {
            **released,
            OutboxMessage.status: "sent",
            OutboxMessage.sent_at: utcnow(),
            OutboxMessage.provider_id: provider_id[:100],
            OutboxMessage.last_error: "",
        },
    )
