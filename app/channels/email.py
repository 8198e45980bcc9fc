"""Email: a console adapter (the default) and SMTP."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from app.channels import DeliveryError, Outgoing, demo_receive, masked

log = logging.getLogger("portal.email")


class ConsoleEmail:
    """Sends nothing: logs that an email would have gone (its text, logged and kept in
    memory for the Outbox page, only in demo mode)."""

    def __init__(self, *, reveal_body: bool = False) -> None:
        self.reveal_body = reveal_body

    async def send(self, message: Outgoing) -> str:
        if self.reveal_body:
            demo_receive(message)
            log.info(
                "Email to %s: %s\n%s", masked(message.recipient), message.subject, message.body
            )
        else:
            log.info(
                "Email to %s not sent: no SMTP server is configured", masked(message.recipient)
            )
        return f"console-{message.idempotency_key}"


class SMTPEmail:
    """Plain SMTP (STARTTLS when asked). The Message-ID is the outbox key, the same on every
    attempt, so a retried message can be recognised as the same one."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def _message(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        domain = self.sender.rpartition("@")[2] or "portal.invalid"
        email["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
        email.set_content(message.body)
        return email

    def _send_blocking(self, email: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(email)

    async def send(self, message: Outgoing) -> str:
        email = self._message(message)
        try:
            await asyncio.to_thread(self._send_blocking, email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise DeliveryError(
                f"smtp recipient refused {codes}", permanent=all(500 <= c < 600 for c in codes)
            ) from error
        except smtplib.SMTPResponseException as error:
            # 5xx: the server refuses this message for good; 4xx: try again later.
            raise DeliveryError(
                f"smtp {error.smtp_code}", permanent=500 <= error.smtp_code < 600
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"smtp unreachable: {type(error).__name__}") from error
        return str(email["Message-ID"])
