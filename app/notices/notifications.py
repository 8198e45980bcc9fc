"""The test notice a person sends themselves from the notification settings."""

from __future__ import annotations

from app.db import write_transaction
from app.i18n import N_
from app.notices.delivery import notify_account
from app.notices.words import Message

TRIAL_NOTICE = Message(
    "trial_notice",
    subject=N_("This is a test notice from the patient portal. Your notices will look like this."),
)


async def send_test_notice(*, account_id: int) -> list[str]:
    """ "Send me a test notice": at once, by every channel the person chose for anything; the
    channels it went by (none when nothing is chosen anywhere)."""
    async with write_transaction():
        return await notify_account(
            account_id=account_id, category="test", event="test", words=TRIAL_NOTICE.words
        )
