"""The reminder the day before a visit."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import notify_patient
from app.notices.words import Message

VISIT_REMINDER = Message("visit_reminder", subject=N_("You have a visit coming up."))


async def send_visit_reminder(*, patient_id: int, visit_public_id: str, confidential: bool) -> int:
    """Everyone who follows the record's visits hears of one coming up (a confidential one:
    the patient alone); how many were told."""
    event = f"visit-{visit_public_id}"
    return await notify_patient(
        patient_id=patient_id,
        category="appointments",
        event=event,
        words=VISIT_REMINDER.words,
        confidential=confidential,
    )
