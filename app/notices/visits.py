"""Visits: the reminders before a visit, and the waitlist's offers of an earlier time. Each
links to the exact screen by a random id or an opaque token; none names the visit."""

from __future__ import annotations

from dataclasses import replace

from app.i18n import N_
from app.notices.delivery import Words, notify_patient
from app.notices.words import Message, Say, Wording

VISIT_REMINDER = Message("visit_reminder", subject=N_("You have a visit coming up."))
WAITLIST_OFFER = Message(
    "waitlist_offer",
    subject=N_("An earlier time opened up for a visit."),
    text=N_("%(clinic)s: an earlier time opened up for a visit. Tap to take it: %(link)s"),
)
WAITLIST_OFFER_GONE = Message(
    "waitlist_offer_gone", subject=N_("The earlier visit time you were offered has been taken.")
)


def visit_url(visit_public_id: str) -> str:
    """A visit's page, where a reminder leads: confirm or cancel it there."""
    return f"/visits/{visit_public_id}"


async def send_visit_reminder(*, patient_id: int, visit_public_id: str, confidential: bool) -> int:
    """Everyone who follows the record's visits hears of one coming up (a confidential one:
    the patient alone); how many were told."""
    return await notify_patient(
        patient_id=patient_id,
        category="appointments",
        event=f"visit-{visit_public_id}",
        words=VISIT_REMINDER.words,
        confidential=confidential,
        url=visit_url(visit_public_id),
    )


def _offer_words(link: str) -> Words:
    """The offer's text and email carry its link, so one tap takes the time; a push opens it."""

    def words(_: Say) -> Wording:
        texted = WAITLIST_OFFER.words(_, link=link)
        return replace(
            texted,
            push_title=_(WAITLIST_OFFER.subject),
            push_body=_("Open the patient portal to see it."),
        )

    return words


async def send_waitlist_offer(
    *, patient_id: int, offer_public_id: str, path: str, link: str, confidential: bool
) -> int:
    """An earlier time for a waitlisted visit, to everyone who follows the record's visits;
    `path` (and `link`, the same with the portal's address) holds only an opaque token."""
    return await notify_patient(
        patient_id=patient_id,
        category="appointments",
        event=f"offer-{offer_public_id}",
        words=_offer_words(link),
        confidential=confidential,
        url=path,
    )


async def send_waitlist_offer_gone(
    *, patient_id: int, slot_public_id: str, confidential: bool
) -> int:
    """Someone else took the earlier time this record was offered."""
    return await notify_patient(
        patient_id=patient_id,
        category="appointments",
        event=f"offer-gone-{slot_public_id}",
        words=WAITLIST_OFFER_GONE.words,
        confidential=confidential,
    )
