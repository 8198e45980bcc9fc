"""The announcement of a new passkey."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import contacts_of, send_to
from app.notices.words import Message, account_locale, say_in
from app.services.accounts import account_contacts

NEW_PASSKEY = Message(
    "new_passkey",
    subject=N_("A passkey was added to your account"),
    text=N_(
        "A new passkey was added to your patient portal account. If this was not you, call "
        "your clinic."
    ),
)


async def send_new_passkey_announcement(*, account_id: int) -> None:
    """Every channel on file hears of a new passkey, so one added by someone else (after a
    stolen code, say) does not go unnoticed. Inside the caller's transaction."""
    words = NEW_PASSKEY.words(say_in(await account_locale(account_id)))
    for contact in contacts_of(*await account_contacts(account_id)):
        await send_to(to=contact, words=words, kind="passkey_added")
