"""Caregivers: the invitation and its acceptance code, and the notices when access to a
record is given or ends. No names and nothing about health: only that something happened."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import Contact, notify_account, notify_patient, send_to
from app.notices.words import Message, say_in

CAREGIVER_INVITE = Message(
    "caregiver_invite",
    subject=N_("An invitation to help with someone's care"),
    text=N_(
        "%(clinic)s: you are invited to help someone with their care in the patient portal. "
        "Tap to accept: %(link)s"
    ),
)
CAREGIVER_INVITE_CODE = Message(
    "caregiver_invite_code",
    subject=N_("Your code to accept an invitation"),
    text=N_(
        "Your code to accept the invitation in the patient portal is %(code)s. "
        "It works for 10 minutes. Never share it."
    ),
)
ACCESS_CHANGED = Message(
    "access_changed", subject=N_("There is a change to who can see a portal record.")
)
GUARDIAN_ACCESS_ENDED = Message(
    "guardian_access_ended",
    subject=N_(
        "%(clinic)s: your access to a family member's portal record has ended because they "
        "are now an adult. They can give you access again in the portal."
    ),
)
ADULTHOOD_REACHED = Message(
    "adulthood_reached",
    subject=N_(
        "%(clinic)s: you are now an adult, so your parent's or guardian's access to your "
        "portal record has ended. You can give them access again in the portal."
    ),
)


async def send_caregiver_invite(*, to: Contact, link: str) -> None:
    """The invitation to the phone or email the patient (or the clinic) gave, in the clinic's
    language: who holds that contact is not known yet."""
    words = CAREGIVER_INVITE.words(say_in(None), link=link)
    await send_to(to=to, words=words, kind="caregiver_invite")


async def send_caregiver_invite_code(*, to: Contact, code: str) -> None:
    """The code that shows whoever accepts an invitation holds the phone or email it went to."""
    words = CAREGIVER_INVITE_CODE.words(say_in(None), code=code)
    await send_to(to=to, words=words, kind="contact_code")


async def send_new_caregiver_notice(*, patient_id: int, grant_public_id: str) -> None:
    """Someone accepted a patient's invitation: the patient alone is told, so access no one
    meant to give does not go unnoticed."""
    await notify_patient(
        patient_id=patient_id,
        category="access",
        event=f"grant-{grant_public_id}",
        words=ACCESS_CHANGED.words,
        confidential=True,
    )


async def send_guardian_access_ended(*, account_id: int, grant_public_id: str) -> None:
    """A guardian's access ended at the patient's coming of age: the guardian is told."""
    event = f"adulthood-{grant_public_id}"
    await notify_account(
        account_id=account_id, category="access", event=event, words=GUARDIAN_ACCESS_ENDED.words
    )


async def send_adulthood_reached(*, patient_id: int, grant_public_id: str) -> None:
    """The same event, told to the now-adult patient alone."""
    event = f"adulthood-{grant_public_id}"
    words = ADULTHOOD_REACHED.words
    await notify_patient(
        patient_id=patient_id, category="access", event=event, words=words, confidential=True
    )
