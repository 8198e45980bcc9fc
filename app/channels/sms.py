"""SMS: a console adapter (the default: the log, and the demo's outbox) and Twilio."""

from __future__ import annotations

import logging

import httpx

from app.channels import DeliveryError, Outgoing, demo_receive, masked

log = logging.getLogger("portal.sms")


class ConsoleSMS:
    """Sends nothing: logs that a text would have gone. The text itself (which can hold a
    single-use link) is logged, and kept in memory for the Outbox page, only in demo mode,
    where that is how people read it."""

    def __init__(self, *, reveal_body: bool = False) -> None:
        self.reveal_body = reveal_body

    async def send(self, message: Outgoing) -> str:
        if self.reveal_body:
            demo_receive(message)
            log.info("SMS to %s: %s", masked(message.recipient), message.body)
        else:
            log.info(
                "SMS to %s not sent (%d characters): no SMS provider is configured",
                masked(message.recipient),
                len(message.body),
            )
        return f"console-{message.idempotency_key}"


class TwilioSMS:
    """Twilio's Messages API. It has no idempotency key for sending, so a retry after an
    answer that never arrived may send twice: at-least-once, as the outbox promises."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        status_callback: str = "",
    ) -> None:
        self.account_sid = account_sid
        self.auth = (account_sid, auth_token)
        self.from_number = from_number
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.status_callback = status_callback

    async def send(self, message: Outgoing) -> str:
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        form = {"To": message.recipient, "From": self.from_number, "Body": message.body}
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, data=form, auth=self.auth)
        except httpx.HTTPError as error:
            raise DeliveryError(f"twilio unreachable: {type(error).__name__}") from error
        if response.status_code in (200, 201):
            return str(response.json().get("sid", ""))
        reason = f"twilio {response.status_code}"
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(reason, retry_after=_retry_after(response))
        # 4xx: a bad number, an unverified sender, a blocked recipient. Retrying will not help.
        raise DeliveryError(reason, permanent=True)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
