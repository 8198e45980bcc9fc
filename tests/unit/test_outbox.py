"""The outbox delivers at least once, never twice at the same time, and retries politely."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller

from app.channels import DeliveryError, Outgoing
from app.channels.email import SMTPEmail
from app.channels.sms import ConsoleSMS, TwilioSMS
from app.clock import set_clock
from app.db import write_transaction
from app.services.outbox import (
    MAX_ATTEMPTS,
    backoff,
    body_hmac,
    outbox_claim,
    outbox_deliver,
    outbox_enqueue,
    outbox_purge,
)
from app.tables import OutboxMessage

LEASE = timedelta(minutes=2)
BODY = "You have a new message. Open the portal to read it."


@pytest.fixture(autouse=True)
async def empty_outbox() -> AsyncIterator[None]:
    # Before and after: a row left pending would be claimed by the next module's worker.
    await OutboxMessage.delete(force=True)
    yield
    await OutboxMessage.delete(force=True)


async def _queue(
    channel: str = "sms", recipient: str = "+15550100001", body: str = BODY, **extra: Any
) -> str:
    async with write_transaction():
        return await outbox_enqueue(channel=channel, recipient=recipient, body=body, **extra)


async def _row(key: str) -> dict[str, Any]:
    row = await OutboxMessage.select().where(OutboxMessage.idempotency_key == key).first()
    assert row is not None
    return row


class Recorder:
    """A channel that records what it was asked to send."""

    def __init__(self, delay: float = 0.0, fail: DeliveryError | None = None) -> None:
        self.sent: list[str] = []
        self.delay = delay
        self.fail = fail

    async def send(self, message: Outgoing) -> str:
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.sent.append(message.idempotency_key)
        return f"rec-{message.idempotency_key}"


async def test_a_message_is_queued_only_if_what_caused_it_commits() -> None:
    async def cause_then_fail() -> None:
        async with write_transaction():
            await outbox_enqueue(channel="sms", recipient="+15550100002", body=BODY, key="lost")
            raise RuntimeError("the cause failed")

    with pytest.raises(RuntimeError):
        await cause_then_fail()
    assert await OutboxMessage.count() == 0


async def test_a_delivered_message_is_marked_sent_with_the_provider_id() -> None:
    key = await _queue()
    assert await outbox_deliver(channels={"sms": ConsoleSMS()}, worker="w1", lease=LEASE) == 1
    row = await _row(key)
    assert row["status"] == "sent"
    assert row["provider_id"] == f"console-{key}"
    assert row["lease_owner"] is None
    assert await outbox_deliver(channels={"sms": ConsoleSMS()}, worker="w1", lease=LEASE) == 0


async def test_a_worker_killed_mid_delivery_loses_nothing() -> None:
    key = await _queue()
    start = datetime.now(UTC)
    set_clock(lambda: start)
    [claimed] = await outbox_claim(worker="dies", limit=10, lease=LEASE)  # then never finishes
    assert await outbox_claim(worker="other", limit=10, lease=LEASE) == []  # lease still held
    set_clock(lambda: start + LEASE + timedelta(seconds=1))
    recorder = Recorder()
    assert await outbox_deliver(channels={"sms": recorder}, worker="other", lease=LEASE) == 1
    row = await _row(key)
    assert recorder.sent == [claimed.message.idempotency_key] == [key]
    assert row["status"] == "sent"
    assert row["attempts"] == 2


async def test_two_workers_never_deliver_the_same_message() -> None:
    keys = {await _queue(recipient=f"+1555010{n:04d}") for n in range(30)}
    first, second = Recorder(delay=0.005), Recorder(delay=0.005)

    async def drain(name: str, recorder: Recorder) -> None:
        while await outbox_deliver(channels={"sms": recorder}, worker=name, limit=3, lease=LEASE):
            pass

    await asyncio.gather(drain("a", first), drain("b", second))
    delivered = first.sent + second.sent
    assert sorted(delivered) == sorted(keys)
    assert first.sent
    assert second.sent


async def test_failures_back_off_and_give_up_after_the_last_attempt() -> None:
    key = await _queue()
    failing = Recorder(fail=DeliveryError("provider down"))
    moment = datetime.now(UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        set_clock(lambda moment=moment: moment)
        assert await outbox_deliver(channels={"sms": failing}, worker="w", lease=LEASE) == 1
        row = await _row(key)
        assert row["attempts"] == attempt
        assert row["last_error"] == "provider down"
        if attempt < MAX_ATTEMPTS:
            assert row["status"] == "pending"
            # Not due again before its backoff...
            assert await outbox_deliver(channels={"sms": failing}, worker="w", lease=LEASE) == 0
            moment = row["next_attempt_at"] + timedelta(seconds=1)
    assert (await _row(key))["status"] == "dead"


async def test_a_permanent_failure_is_not_retried() -> None:
    key = await _queue()
    refusing = Recorder(fail=DeliveryError("twilio 400", permanent=True))
    await outbox_deliver(channels={"sms": refusing}, worker="w", lease=LEASE)
    row = await _row(key)
    assert (row["status"], row["attempts"]) == ("dead", 1)


def test_backoff_doubles_and_is_capped_and_honours_retry_after() -> None:
    assert timedelta(seconds=24) <= backoff(1) <= timedelta(seconds=36)
    assert timedelta(seconds=96) <= backoff(3) <= timedelta(seconds=144)
    assert backoff(30) <= timedelta(hours=2, minutes=25)
    assert backoff(5, retry_after=7) == timedelta(seconds=7)


class _FakeTwilio(BaseHTTPRequestHandler):
    """Speaks the shape of Twilio's Messages API; answers as the test scripts."""

    script: ClassVar[list[tuple[int, dict[str, str], dict[str, Any]]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self.seen.append({"path": self.path, "auth": self.headers["Authorization"], "form": form})
        status, headers, body = self.script.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def fake_twilio() -> Iterator[str]:
    _FakeTwilio.script, _FakeTwilio.seen = [], []
    server = HTTPServer(("127.0.0.1", 0), _FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


async def test_twilio_is_sent_the_message_and_retried_after_429(fake_twilio: str) -> None:
    _FakeTwilio.script = [
        (429, {"Retry-After": "7"}, {"code": 20429, "message": "Too Many Requests"}),
        (201, {}, {"sid": "SM0123456789", "status": "queued"}),
    ]
    twilio = TwilioSMS(
        account_sid="AC42", auth_token="secret", from_number="+15550009999", base_url=fake_twilio
    )
    key = await _queue(recipient="+15550101001")
    start = datetime.now(UTC)
    set_clock(lambda: start)
    await outbox_deliver(channels={"sms": twilio}, worker="w", lease=LEASE)
    row = await _row(key)
    assert (row["status"], row["last_error"]) == ("pending", "twilio 429")
    assert row["next_attempt_at"] == start + timedelta(seconds=7)

    set_clock(lambda: start + timedelta(seconds=8))
    await outbox_deliver(channels={"sms": twilio}, worker="w", lease=LEASE)
    row = await _row(key)
    assert (row["status"], row["provider_id"]) == ("sent", "SM0123456789")

    expected_auth = "Basic " + base64.b64encode(b"AC42:secret").decode()
    assert [request["path"] for request in _FakeTwilio.seen] == [
        "/2010-04-01/Accounts/AC42/Messages.json"
    ] * 2
    assert all(request["auth"] == expected_auth for request in _FakeTwilio.seen)
    assert _FakeTwilio.seen[0]["form"] == {
        "To": "+15550101001",
        "From": "+15550009999",
        "Body": BODY,
    }
    assert _FakeTwilio.seen[1]["form"] == _FakeTwilio.seen[0]["form"]


async def test_twilio_refusing_a_number_is_final(fake_twilio: str) -> None:
    _FakeTwilio.script = [(400, {}, {"code": 21211, "message": "Invalid 'To' Phone Number"})]
    twilio = TwilioSMS(
        account_sid="AC42", auth_token="secret", from_number="+15550009999", base_url=fake_twilio
    )
    key = await _queue(recipient="+1555")
    await outbox_deliver(channels={"sms": twilio}, worker="w", lease=LEASE)
    assert (await _row(key))["status"] == "dead"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 Message accepted for delivery"


async def test_email_goes_through_a_real_smtp_server_with_a_stable_message_id() -> None:
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SMTPEmail(
            host="127.0.0.1",
            port=port,
            sender="portal@clinic.example",
            starttls=False,
        )
        key = await _queue(
            channel="email", recipient="maria@example.com", subject="A new message for you"
        )
        await outbox_deliver(channels={"email": smtp}, worker="w", lease=LEASE)
    finally:
        controller.stop()
    [(sender, recipients, content)] = inbox.messages
    email = message_from_bytes(content)
    assert (sender, recipients) == ("portal@clinic.example", ["maria@example.com"])
    assert email["Subject"] == "A new message for you"
    assert email["Message-ID"] == f"<{key}@clinic.example>"
    assert email.get_payload().strip() == BODY
    row = await _row(key)
    assert (row["status"], row["provider_id"]) == ("sent", email["Message-ID"])


async def test_a_delivered_message_keeps_only_its_kind_length_and_a_keyed_hash() -> None:
    secret = "Your portal sign-in code is 493817. It works for 10 minutes."
    async with write_transaction():
        key = await outbox_enqueue(
            channel="sms", recipient="+15550100003", body=secret, kind="sign_in_code"
        )
    await outbox_deliver(channels={"sms": ConsoleSMS()}, worker="w", lease=LEASE)
    row = await _row(key)
    assert row["status"] == "sent"
    assert "493817" not in row["body"]
    assert row["scrubbed_at"] is not None
    assert (row["kind"], row["body_length"]) == ("sign_in_code", len(secret))
    assert row["body_hmac"] == body_hmac(secret) != body_hmac(secret.replace("493817", "493818"))


async def test_a_message_that_gives_up_keeps_no_text_either() -> None:
    key = await _queue(body="Join us: https://portal.example/care/AbCdEf123456")
    refusing = Recorder(fail=DeliveryError("twilio 400", permanent=True))
    await outbox_deliver(channels={"sms": refusing}, worker="w", lease=LEASE)
    row = await _row(key)
    assert row["status"] == "dead"
    assert "/care/" not in row["body"]
    assert row["scrubbed_at"] is not None


async def test_a_message_still_to_send_keeps_its_text() -> None:
    key = await _queue()
    failing = Recorder(fail=DeliveryError("provider down"))
    await outbox_deliver(channels={"sms": failing}, worker="w", lease=LEASE)
    row = await _row(key)
    assert (row["status"], row["body"], row["scrubbed_at"]) == ("pending", BODY, None)


async def test_finished_messages_are_deleted_after_the_days_kept() -> None:
    start = datetime.now(UTC)
    set_clock(lambda: start)
    for _ in range(2):
        await _queue()
    waiting = await _queue()
    await outbox_deliver(channels={"sms": ConsoleSMS()}, worker="w", limit=1, lease=LEASE)  # sent
    refusing = Recorder(fail=DeliveryError("twilio 400", permanent=True))
    await outbox_deliver(channels={"sms": refusing}, worker="w", limit=1, lease=LEASE)  # dead
    set_clock(lambda: start + timedelta(days=29))
    assert await outbox_purge(keep_days=30) == 0
    set_clock(lambda: start + timedelta(days=31))
    assert await outbox_purge(keep_days=30) == 2
    left = await OutboxMessage.select(OutboxMessage.idempotency_key)
    assert [row["idempotency_key"] for row in left] == [waiting]
