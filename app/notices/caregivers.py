"""Caregivers: the invitation and its acceptance code, and the notices when access to a
record is given or ends. No names and nothing about health: only that something happened."""

from __future__ import annotations

from functools import partial

from app.clinic import clinic_profile
from app.notices.delivery import Contact, notify_account, notify_patient, send_to
from app.notices.words import Say, Wording, message, notice_words, same_words, say_in


@message
def caregiver_invite(_: Say, *, clinic: str, link: str) -> Wording:
    return same_words(
        subject=_("An invitation to help with someone's care"),
        text=_(
            "%(clinic)s: you are invited to help someone with their care in the patient "
            "portal. Tap to accept: %(link)s"
        )
        % {"clinic": clinic, "link": link},
    )


async def send_caregiver_invite(*, to: Contact, link: str) -> None:
    """The invitation to the phone or email the patient (or the clinic) gave, in the clinic's
    language: who holds that contact is not known yet."""
    words = caregiver_invite(say_in(None), clinic=clinic_profile().name, link=link)
    await send_to(to=to, words=words, kind="caregiver_invite")


@message
def caregiver_invite_code(_: Say, *, code: str) -> Wording:
    return same_words(
        subject=_("Your code to accept an invitation"),
        text=_(
            "Your code to accept the invitation in the patient portal is %(code)s. "
            "It works for 10 minutes. Never share it."
        )
        % {"code": code},
    )


async def send_caregiver_invite_code(*, to: Contact, code: str) -> None:
    """The code that shows whoever accepts an invitation holds the phone or email it went to."""
    await send_to(to=to, words=caregiver_invite_code(say_in(None), code=code), kind="contact_code")


@message
def access_changed(_: Say) -> Wording:
    return notice_words(_, _("There is a change to who can see a portal record."))


async def send_new_caregiver_notice(*, patient_id: int, grant_public_id: str) -> None:
    """Someone accepted a patient's invitation: the patient alone is told, so access no one
    meant to give does not go unnoticed."""
    await notify_patient(
        patient_id=patient_id,
        category="access",
        event=f"grant-{grant_public_id}",
        words=access_changed,
        confidential=True,
    )


@message
def guardian_access_ended(_: Say, *, clinic: str) -> Wording:
    return notice_words(
        _,
        _(
            "%(clinic)s: your access to a family member's portal record has ended because "
            "they are now an adult. They can give you access again in the portal."
        )
        % {"clinic": clinic},
    )


async def send_guardian_access_ended(*, account_id: int, grant_public_id: str) -> None:
    """A guardian's access ended at the patient's coming of age: the guardian is told."""
    await notify_account(
        account_id=account_id,
        category="access",
        event=f"adulthood-{grant_public_id}",
        words=partial(guardian_access_ended, clinic=clinic_profile().name),
    )


@message
def adulthood_reached(_: Say, *, clinic: str) -> Wording:
    return notice_words(
        _,
        _(
            "%(clinic)s: you are now an adult, so your parent's or guardian's access to your "
            "portal record has ended. You can give them access again in the portal."
        )
        % {"clinic": clinic},
    )


async def send_adulthood_reached(*, patient_id: int, grant_public_id: str) -> None:
    """The same event told to the now-adult patient alone."""
    await notify_patient(
        patient_id=patient_id,
        category="access",
        event=f"adulthood-{grant_public_id}",
        words=partial(adulthood_reached, clinic=clinic_profile().name),
        confidential=True,
    )
