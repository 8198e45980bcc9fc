"""In the embedded default the server itself delivers the outbox."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from app.db import write_transaction
from app.services.outbox import outbox_enqueue
from app.settings import Settings
from app.tables import OutboxMessage
from tests.web.conftest import serving


async def test_the_server_delivers_queued_messages_while_it_runs(settings: Settings) -> None:
    async with serving(replace(settings, embedded_worker=True, sms_provider="console")):
        async with write_transaction():
            key = await outbox_enqueue(
                channel="sms", recipient="+15550100009", body="Your clinic has a message for you."
            )
        for _ in range(300):  # a condition with a deadline (30 s on a busy machine), no fixed sleep
            status = (
                await OutboxMessage.select(OutboxMessage.status)
                .where(OutboxMessage.idempotency_key == key)
                .first()
            )
            if status and status["status"] == "sent":
                break
            await asyncio.sleep(0.1)
    assert status == {"status": "sent"}
