"""The announcement of a new passkey."""

from __future__ import annotations

from app.notices.delivery import contacts_of, send_to
from app.notices.words import Say, Wording, account_locale, message, same_words, say_in
from app.services.accounts import account_contacts


@message
def new_passkey(_: Say) -> Wording:
    return same_words(
        subject=_("A passkey was added to your account"),
        text=_(
            "A new passkey was added to your patient portal account. If this was not you, "
            "call your clinic."
        ),
    )


async def send_new_passkey_announcement(*, account_id: int) -> None:
    """Every channel on file hears of a new passkey, so one added by someone else (after a
    stolen code, say) does not go unnoticed. Inside the caller's transaction."""
    words = new_passkey(say_in(await account_locale(account_id)))
    for contact in contacts_of(*await account_contacts(account_id)):
        await send_to(to=contact, words=words, kind="passkey_added")
