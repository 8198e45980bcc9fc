"""The clinic's invitation to the portal: a single-use link to the phone or email on a record."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import Contact, send_to
from app.notices.words import Message, record_locale, say_in

# Where to go, never anything about the person or their health.
ENROLLMENT_LINK = Message(
    "enrollment_link",
    subject=N_("Your invitation to the patient portal"),
    text=N_("%(clinic)s invites you to its patient portal. Tap to join: %(link)s"),
)


async def send_enrollment_link(*, to: Contact, patient_id: int, clinic: str, link: str) -> str:
    """The link to the record's phone or email; its outbox key. In the language of the
    record's account when it has one (a new link after a lost passkey)."""
    _ = say_in(await record_locale(patient_id))
    words = ENROLLMENT_LINK.words(_, clinic=clinic, link=link)
    return await send_to(to=to, words=words, kind="enrollment_invite")


# A reminder to an invited patient who has not joined yet: the same kind of link, once more.
ENROLLMENT_REMINDER = Message(
    "enrollment_reminder",
    subject=N_("Your patient portal invitation is waiting"),
    text=N_("A reminder from %(clinic)s: your patient portal is ready. Tap to join: %(link)s"),
)


async def send_enrollment_reminder(*, to: Contact, patient_id: int, clinic: str, link: str) -> str:
    """A follow-up to an invitation not used after a week: a new link; its outbox key."""
    _ = say_in(await record_locale(patient_id))
    words = ENROLLMENT_REMINDER.words(_, clinic=clinic, link=link)
    return await send_to(to=to, words=words, kind="enrollment_reminder")
