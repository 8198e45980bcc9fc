"""Web Push through pywebpush to a push service on loopback that checks what a real one
checks (the VAPID signature and audience, TTL, aes128gcm) and answers as scripted: the
decrypted payload is right and carries no health data, 404 and 410 remove the
subscription, and 429 is retried after the delay the service asked for."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from app.channels import Channel, DeliveryError, Outgoing, PushDevice
from app.channels.email import ConsoleEmail
from app.channels.push import WebPushChannel
from app.channels.sms import ConsoleSMS
from app.clock import set_clock, utcnow
from app.db import write_transaction
from app.notices import notify_account
from app.notices.results import RESULT_READY
from app.services.outbox import outbox_deliver
from app.services.push import endpoint_allowed, push_enqueue, vapid_public_key
from app.settings import get_settings
from app.tables import OutboxMessage, Patient, PushSubscription
from tests.factories import make_person, unique

LEASE = timedelta(minutes=2)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class PushService:
    """A push service on loopback: it verifies each request and answers from a script."""

    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, object]] = field(default_factory=list)
    browser_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    @property
    def keys(self) -> dict[str, str]:
        public = self.browser_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": _b64encode(public), "auth": _b64encode(self.auth)}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        claims = _verified_jwt(fields["t"], fields["k"])
        assert scheme == "vapid"
        assert fields["k"] == vapid_public_key(get_settings().vapid_private_key)
        assert claims["aud"] == self.url.rsplit("/", 2)[0]
        assert int(claims["exp"]) > time.time()
        assert str(claims["sub"]).startswith(("mailto:", "https://"))
        assert int(request.headers["TTL"]) > 0
        assert request.headers["Content-Encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            body, private_key=self.browser_key, auth_secret=self.auth, version="aes128gcm"
        )
        self.received.append(json.loads(plain))
        status, headers = self.answers.pop(0) if self.answers else (201, {})
        return web.Response(status=status, headers=headers)


def _verified_jwt(token: str, public_key: str) -> dict[str, object]:
    header, claims, signature = token.split(".")
    raw = _b64decode(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64decode(public_key))
    key.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        f"{header}.{claims}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )  # raises InvalidSignature for a forged or wrong key
    assert json.loads(_b64decode(header))["alg"] == "ES256"
    parsed: dict[str, object] = json.loads(_b64decode(claims))
    return parsed


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    service = PushService()
    app = web.Application()
    app.router.add_post("/push/{device}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    service.url = f"http://127.0.0.1:{port}/push/{secrets.token_hex(4)}"
    try:
        yield service
    finally:
        await runner.cleanup()


def _channels() -> dict[str, Channel]:
    """Pushes to the push service on loopback; texts and email (a fallback, or a message an
    earlier test left queued) to the console."""
    settings = get_settings()
    return {
        "push": WebPushChannel(
            private_key_pem=settings.vapid_private_key, subject="mailto:portal@clinic.test"
        ),
        "sms": ConsoleSMS(),
        "email": ConsoleEmail(),
    }


async def _subscribed(service: PushService) -> tuple[int, str]:
    person = await make_person()
    row = PushSubscription(
        account=person.account.id, endpoint=service.url, device_name="Chrome", **service.keys
    )
    await PushSubscription.insert(row)
    return person.account.id, str(row.public_id)


async def _deliver_all() -> None:
    while await outbox_deliver(channels=_channels(), worker="w", lease=LEASE):
        pass


async def test_the_push_service_gets_a_signed_encrypted_payload_without_health_data(
    push_service: PushService,
) -> None:
    account_id, device = await _subscribed(push_service)
    await push_enqueue(
        account_id=account_id,
        title="You have a new test result",
        body="Open the portal to see it.",
        url="/results",
        tag="result-42",
    )
    await _deliver_all()
    assert push_service.received == [
        {
            "title": "You have a new test result",
            "body": "Open the portal to see it.",
            "url": "/results",
            "tag": "result-42",
        }
    ]
    sent = await OutboxMessage.select(OutboxMessage.status).where(OutboxMessage.recipient == device)
    assert sent == [{"status": "sent"}]
    seen = await PushSubscription.select(PushSubscription.last_success_at).where(
        PushSubscription.public_id == device
    )
    assert seen[0]["last_success_at"] is not None


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_is_removed(push_service: PushService, status: int) -> None:
    account_id, device = await _subscribed(push_service)
    push_service.answers = [(status, {})]
    await push_enqueue(account_id=account_id, title="t", body="b", url="/home", tag="x")
    await _deliver_all()
    assert not await PushSubscription.exists().where(PushSubscription.public_id == device)
    row = await OutboxMessage.select(OutboxMessage.status).where(OutboxMessage.recipient == device)
    assert row == [{"status": "dead"}]


async def test_the_push_channel_reports_a_gone_subscription_and_leaves_the_tables_alone(
    push_service: PushService,
) -> None:
    """The channel is an adapter: it says the device is gone; the outbox removes it."""
    _, device = await _subscribed(push_service)
    push_service.answers = [(410, {})]
    message = Outgoing(
        channel="push",
        recipient=device,
        subject="t",
        body="{}",
        idempotency_key=unique("k"),
        device=PushDevice(endpoint=push_service.url, **push_service.keys),
    )
    with pytest.raises(DeliveryError) as failed:
        await _channels()["push"].send(message)
    assert failed.value.gone
    assert failed.value.permanent
    assert await PushSubscription.exists().where(PushSubscription.public_id == device)


async def test_too_many_requests_is_retried_after_the_delay_asked_for(
    push_service: PushService,
) -> None:
    account_id, device = await _subscribed(push_service)
    push_service.answers = [(429, {"Retry-After": "120"})]
    await push_enqueue(account_id=account_id, title="t", body="b", url="/home", tag="y")
    now = utcnow()
    await _deliver_all()
    row = (
        await OutboxMessage.select(OutboxMessage.status, OutboxMessage.next_attempt_at)
        .where(OutboxMessage.recipient == device)
        .first()
    )
    assert row is not None
    assert row["status"] == "pending"
    assert row["next_attempt_at"] >= now + timedelta(seconds=119)
    later = now + timedelta(seconds=121)
    set_clock(lambda: later)
    await _deliver_all()
    assert len(push_service.received) == 2  # the same event, delivered on the retry
    assert push_service.received[0] == push_service.received[1]
    done = await OutboxMessage.select(OutboxMessage.status).where(OutboxMessage.recipient == device)
    assert done == [{"status": "sent"}]


def test_only_known_push_services_receive_our_requests() -> None:
    hosts = ("fcm.googleapis.com", ".push.apple.com", "127.0.0.1")
    assert endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", hosts)
    assert endpoint_allowed("https://web.push.apple.com/QGx", hosts)
    assert endpoint_allowed("http://127.0.0.1:9999/push/1", hosts)
    assert not endpoint_allowed("http://fcm.googleapis.com/fcm/send/abc", hosts)
    assert not endpoint_allowed("https://evil.example/push", hosts)
    assert not endpoint_allowed("https://push.apple.com.evil.example/x", hosts)
    assert not endpoint_allowed("http://10.0.0.1/internal", (*hosts, "10.0.0.1"))


@pytest.mark.parametrize(
    ("answers", "texts"),
    [
        ([410], 1),  # the only device is gone
        ([410, 404], 1),  # every device is gone: still one text
        ([410, 201], 0),  # another device showed it
    ],
)
async def test_a_notice_whose_devices_are_all_gone_goes_by_text_exactly_once(
    push_service: PushService, answers: list[int], texts: int
) -> None:
    person = await make_person()
    phone = f"+1555012{secrets.randbelow(10_000):04d}"
    await Patient.update({Patient.phone: phone}).where(Patient.id == person.patient.id)
    for n in range(len(answers)):
        await PushSubscription.insert(
            PushSubscription(
                account=person.account.id, endpoint=f"{push_service.url}{n}", **push_service.keys
            )
        )
    push_service.answers = [(status, {}) for status in answers]
    async with write_transaction():
        used = await notify_account(
            account_id=person.account.id, category="results", words=RESULT_READY.words, event="g"
        )
    assert used == ["push"]  # queued as a push: whether a device is gone is not known yet
    for _ in range(2):
        await _deliver_all()
    sent = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.kind).where(
        OutboxMessage.recipient == phone
    )
    assert sent == [{"status": "sent", "kind": "notice.results"}] * texts
