"""The outbox: messages are written with what caused them and delivered later, at least once.

A worker claims due rows under a lease, sends them, and marks each sent, or schedules a
retry with exponential backoff (or the provider's Retry-After), or gives up after
MAX_ATTEMPTS. A worker that dies mid-delivery loses nothing: its lease runs out and another
worker claims the row again, with the same idempotency key.

A message's text can hold a sign-in code or a single-use link, so it is kept only while it may
still be sent: a finished row (sent or given up) keeps its kind, length and a keyed hash, and
is deleted after PORTAL_OUTBOX_KEEP_DAYS.

The channels are adapters that keep no tables: the outbox hands a push its subscription,
notes when the device last took one, and removes a subscription the push service reports gone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from app.channels import Channel, DeliveryError, Outgoing, PushDevice, demo_received, masked
from app.clock import utcnow
from app.db import engine, write_transaction
from app.settings import get_settings
from app.tables import OutboxMessage, PushSubscription, SmsOptOut

log = logging.getLogger("portal.outbox")

CHANNELS = ("sms", "email", "push")
# Texts a person asked for, which still go to a number that texted STOP: a sign-in code or a
# contact check they just requested, the answer to a text they sent us, a test they asked
# for. Every other text (campaigns, reminders, notices, invitations) does not.
REQUESTED_KINDS = frozenset({"sign_in_code", "contact_code", "sms_reply", "notice.test"})
MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=2)


@dataclass(frozen=True)
class Claimed:
    id: int
    message: Outgoing
    attempts: int
    kind: str = ""
    notice: str | None = None
    account_id: int | None = None


@dataclass(frozen=True)
class Undelivered:
    """A notice none of whose pushes could be delivered."""

    account_id: int
    notice: str
    kind: str
    subject: str


# Set by app.notices.delivery: what to do when a notice's last push gives up (it sits above
# the outbox, so the outbox cannot import it).
_on_undelivered: list[Callable[[Undelivered], Awaitable[None]]] = []


def outbox_on_undelivered(handler: Callable[[Undelivered], Awaitable[None]]) -> None:
    _on_undelivered[:] = [handler]


def body_hmac(body: str) -> str:
    """Keyed, so a six-digit code cannot be found again by hashing every candidate."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


async def outbox_enqueue(
    *,
    channel: str,
    recipient: str,
    subject: str = "",
    body: str,
    key: str | None = None,
    not_before: datetime | None = None,
    kind: str = "",
    account_id: int | None = None,
    notice: str | None = None,
) -> str:
    """Queue a message inside the caller's transaction; returns its idempotency key.

    Messages carry no health information: they say that something is waiting in the portal.
    `kind` names the sort of message once its text is gone; a push with `notice` (and the
    account) falls back to a text or email when it is the notice's last push to give up."""
    if channel not in CHANNELS:
        raise ValueError(channel)
    key = key or secrets.token_hex(16)
    if channel == "sms" and not await sms_allowed(recipient, kind=kind):
        log.info("sms %s to %s not queued: the number opted out", kind, masked(recipient))
        return key
    await OutboxMessage.insert(
        OutboxMessage(
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            body_length=len(body),
            body_hmac=body_hmac(body),
            kind=kind[:40],
            notice=notice,
            account=account_id,
            idempotency_key=key,
            # Quiet hours: a message may wait until the person's morning.
            next_attempt_at=max(utcnow(), not_before) if not_before else utcnow(),
        )
    )
    return key


async def sms_allowed(number: str, *, kind: str) -> bool:
    """Whether a text of this kind may go to this number: the one place STOP is kept."""
    if kind in REQUESTED_KINDS:
        return True
    return not await SmsOptOut.exists().where(SmsOptOut.number == number)


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
            RETURNING id, channel, recipient, subject, body, idempotency_key, attempts,
                      kind, notice, account
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
            kind=row["kind"],
            notice=row["notice"],
            account_id=row["account"],
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


def _scrubbed() -> dict[Any, Any]:
    return {OutboxMessage.body: "", OutboxMessage.scrubbed_at: utcnow()}


async def _addressed(message: Outgoing) -> Outgoing:
    """A push with its subscription, as the channel needs it (none: removed meanwhile)."""
    if message.channel != "push":
        return message
    row = (
        await PushSubscription.select(
            PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth
        )
        .where(PushSubscription.public_id == message.recipient)
        .first()
    )
    return replace(message, device=PushDevice(**row) if row else None)


async def _finish(
    claimed: Claimed, worker: str, values: dict[Any, Any], *, delivered: bool = False
) -> None:
    """Record the outcome, only if this worker still holds the lease; a device that took a
    push is seen to work (the Notifications page shows when it last did)."""
    async with write_transaction():
        await OutboxMessage.update(values).where(
            OutboxMessage.id == claimed.id, OutboxMessage.lease_owner == worker
        )
        if delivered and claimed.message.channel == "push":
            await PushSubscription.update({PushSubscription.last_success_at: utcnow()}).where(
                PushSubscription.public_id == claimed.message.recipient
            )


async def _give_up(
    claimed: Claimed, worker: str, values: dict[Any, Any], *, gone: bool = False
) -> None:
    """Mark a message dead, and forget a push subscription the push service reported gone;
    when it was a notice's last push still in play, hand the notice to its fallback, once
    (the notice's rows are locked, so two workers cannot both see themselves as the last)."""
    async with write_transaction():
        if gone and claimed.message.channel == "push":
            await PushSubscription.delete().where(
                PushSubscription.public_id == claimed.message.recipient
            )
        if claimed.notice and engine().engine_type != "sqlite":
            await OutboxMessage.raw(
                "SELECT id FROM outbox WHERE notice = {} ORDER BY id FOR UPDATE", claimed.notice
            )
        updated = (
            await OutboxMessage.update(values)
            .where(OutboxMessage.id == claimed.id, OutboxMessage.lease_owner == worker)
            .returning(OutboxMessage.id)
        )
        if not (updated and claimed.notice and claimed.account_id and _on_undelivered):
            return
        still_in_play = await OutboxMessage.exists().where(
            OutboxMessage.notice == claimed.notice, OutboxMessage.status != "dead"
        )
        if not still_in_play:
            await _on_undelivered[0](
                Undelivered(
                    account_id=claimed.account_id,
                    notice=claimed.notice,
                    kind=claimed.kind,
                    subject=claimed.message.subject,
                )
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
    if claimed.message.channel == "sms" and not await sms_allowed(
        claimed.message.recipient, kind=claimed.kind
    ):
        # STOP came after this text was queued (held for quiet hours, waiting to retry, or
        # revived by staff): it is checked again now, and the text is not sent.
        stopped = {OutboxMessage.status: "dead", OutboxMessage.last_error: "opted_out"}
        await _finish(claimed, worker, {**released, **_scrubbed(), **stopped})
        return
    try:
        message = await _addressed(claimed.message)
        provider_id = await channels[message.channel].send(message)
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
        failed = {
            **released,
            OutboxMessage.next_attempt_at: retry_at,
            OutboxMessage.last_error: error.reason[:200],
        }
        if dead:
            dead_values = {**failed, **_scrubbed(), OutboxMessage.status: "dead"}
            await _give_up(claimed, worker, dead_values, gone=error.gone)
        else:
            await _finish(claimed, worker, {**failed, OutboxMessage.status: "pending"})
        return
    await _finish(
        claimed,
        worker,
        {
            **released,
            **_scrubbed(),
            OutboxMessage.status: "sent",
            OutboxMessage.sent_at: utcnow(),
            OutboxMessage.provider_id: provider_id[:100],
            OutboxMessage.last_error: "",
            # Twilio reports delivery later (outbox_delivery_report); the others never do, so
            # handing a message over is as far as anyone will know.
            OutboxMessage.delivered_at: None if _receipts_follow(provider_id) else utcnow(),
        },
        delivered=True,
    )


def _receipts_follow(provider_id: str) -> bool:
    """A text sent through Twilio: its status callbacks say when it reached the phone."""
    return provider_id.startswith(("SM", "MM"))


DELIVERED = "delivered"
FAILED = frozenset({"undelivered", "failed"})


async def outbox_delivery_report(*, provider_id: str, status: str) -> bool:
    """A provider's status callback for a message it took: note it (and when it arrived);
    whether the message was ours. A late "sent" never undoes a "delivered"."""
    status = status.strip().lower()[:20]
    values: dict[Any, Any] = {OutboxMessage.delivery_status: status}
    if status == DELIVERED:
        values[OutboxMessage.delivered_at] = utcnow()
    async with write_transaction():
        updated = (
            await OutboxMessage.update(values)
            .where(
                OutboxMessage.provider_id == provider_id,
                OutboxMessage.delivery_status != DELIVERED,
            )
            .returning(OutboxMessage.id)
        )
        if status in FAILED and updated:
            await OutboxMessage.update({OutboxMessage.last_error: f"provider: {status}"}).where(
                OutboxMessage.id == updated[0]["id"]
            )
    return bool(updated) or await OutboxMessage.exists().where(
        OutboxMessage.provider_id == provider_id
    )


async def outbox_purge(*, keep_days: int) -> int:
    """Delete finished messages (sent, or given up) older than `keep_days`; how many."""
    cutoff = utcnow() - timedelta(days=keep_days)
    async with write_transaction():
        gone = (
            await OutboxMessage.delete()
            .where(
                OutboxMessage.status.is_in(["sent", "dead"]),
                OutboxMessage.created_at < cutoff,
            )
            .returning(OutboxMessage.id)
        )
    return len(gone)


@dataclass(frozen=True)
class OutboxLine:
    channel: str
    recipient: str
    subject: str
    body: str | None  # None: sent, and its text is no longer kept
    status: str
    created_at: datetime


async def outbox_texts(*, limit: int) -> list[OutboxLine]:
    """The latest texts and emails, newest first. A finished row no longer holds its text;
    in demo mode the copy the console adapter "delivered" (in memory) stands in for it."""
    rows = await (
        OutboxMessage.select(
            OutboxMessage.channel,
            OutboxMessage.recipient,
            OutboxMessage.subject,
            OutboxMessage.body,
            OutboxMessage.scrubbed_at,
            OutboxMessage.idempotency_key,
            OutboxMessage.status,
            OutboxMessage.created_at,
        )
        .where(OutboxMessage.channel.is_in(["sms", "email"]))
        .order_by(OutboxMessage.id, ascending=False)
        .limit(limit)
    )
    return [
        OutboxLine(
            channel=row["channel"],
            recipient=row["recipient"],
            subject=row["subject"],
            body=demo_received(row["idempotency_key"]) if row["scrubbed_at"] else row["body"],
            status=row["status"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class DeliveryProblem:
    public_id: str
    channel: str
    recipient: str  # masked: enough to tell rows apart, not to identify anyone
    attempts: int
    last_error: str
    status: str
    created_at: datetime
    removed: bool  # its text is gone (it gave up), so it cannot be sent again


async def outbox_failing(*, limit: int) -> list[DeliveryProblem]:
    """Messages that gave up (dead) or keep failing, newest first, without their text."""
    rows = await (
        OutboxMessage.select(
            OutboxMessage.public_id,
            OutboxMessage.channel,
            OutboxMessage.recipient,
            OutboxMessage.attempts,
            OutboxMessage.last_error,
            OutboxMessage.status,
            OutboxMessage.created_at,
            OutboxMessage.scrubbed_at,
        )
        .where(
            (OutboxMessage.status == "dead")
            | ((OutboxMessage.status == "pending") & (OutboxMessage.attempts > 0))
        )
        .order_by(OutboxMessage.id, ascending=False)
        .limit(limit)
    )
    return [
        DeliveryProblem(
            **{k: v for k, v in row.items() if k not in ("scrubbed_at", "recipient")},
            recipient=masked(row["recipient"]),
            removed=row["scrubbed_at"] is not None,
        )
        for row in rows
    ]


async def outbox_revive(public_id: str) -> bool:
    """Queue a dead message again while its text is kept (inside the caller's transaction);
    whether there was one."""
    revived = (
        await OutboxMessage.update(
            {
                OutboxMessage.status: "pending",
                OutboxMessage.attempts: 0,
                OutboxMessage.next_attempt_at: utcnow(),
            }
        )
        .where(
            OutboxMessage.public_id == public_id,
            OutboxMessage.status == "dead",
            OutboxMessage.scrubbed_at.is_null(),
        )
        .returning(OutboxMessage.id)
    )
    return bool(revived)
