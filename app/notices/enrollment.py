"""The clinic's invitation to the portal: a single-use link to the phone or email on a record."""

from __future__ import annotations

from app.notices.delivery import Contact, send_to
from app.notices.words import Say, Wording, message, record_locale, same_words, say_in


@message
def enrollment_link(_: Say, *, clinic: str, link: str) -> Wording:
    # Where to go, never anything about the person or their health.
    return same_words(
        subject=_("Your invitation to the patient portal"),
        text=_("%(clinic)s invites you to its patient portal. Tap to join: %(link)s")
        % {"clinic": clinic, "link": link},
    )


async def send_enrollment_link(*, to: Contact, patient_id: int, clinic: str, link: str) -> str:
    """The link to the record's phone or email; its outbox key. In the language of the
    record's account when it has one (a new link after a lost passkey)."""
    _ = say_in(await record_locale(patient_id))
    return await send_to(
        to=to, words=enrollment_link(_, clinic=clinic, link=link), kind="enrollment_invite"
    )
