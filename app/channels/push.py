"""Web Push delivery with pywebpush: VAPID-signed, aes128gcm-encrypted, one device at a time.

The outbox hands over the subscription with the message; a 404 or 410 from the push service
is reported as gone, and the outbox removes the subscription."""

from __future__ import annotations

from urllib.parse import urlsplit

from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from app.channels import DeliveryError, Outgoing

# Seconds a push service keeps an undelivered message (a phone that is off for a while).
TTL_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 10.0


class WebPushChannel:
    def __init__(self, *, private_key_pem: str, subject: str) -> None:
        self._vapid = Vapid02.from_pem(private_key_pem.encode())
        # Who to contact about our pushes: a mailto: or https: address (RFC 8292).
        self._subject = subject

    async def send(self, message: Outgoing) -> str:
        device = message.device
        if device is None:
            raise DeliveryError("subscription gone", gone=True)
        parts = urlsplit(device.endpoint)
        try:
            response = await webpush_async(
                subscription_info={
                    "endpoint": device.endpoint,
                    "keys": {"p256dh": device.p256dh, "auth": device.auth},
                },
                data=message.body,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject, "aud": f"{parts.scheme}://{parts.netloc}"},
                ttl=TTL_SECONDS,
                timeout=TIMEOUT_SECONDS,
                # The same event twice replaces, never doubles (the service worker also
                # shows notifications under the event's tag).
                headers={"Topic": message.idempotency_key[:32], "Urgency": "normal"},
            )
        except WebPushException as error:
            status = getattr(error.response, "status", None)
            if status in (404, 410):
                raise DeliveryError(f"push {status}: subscription gone", gone=True) from None
            if status == 429:
                raise DeliveryError("push 429", retry_after=_retry_after(error)) from None
            if status is not None and 400 <= status < 500:
                raise DeliveryError(f"push {status}", permanent=True) from None
            raise DeliveryError(f"push {status or 'failed'}") from None
        except OSError as error:  # the push service could not be reached: try again later
            raise DeliveryError(f"push unreachable: {type(error).__name__}") from None
        return str(getattr(response, "headers", {}).get("Location", ""))


def _retry_after(error: WebPushException) -> float | None:
    raw = getattr(getattr(error, "response", None), "headers", {}).get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
