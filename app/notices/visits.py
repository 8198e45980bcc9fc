"""The reminder the day before a visit."""

from __future__ import annotations

from app.notices.delivery import notify_patient
from app.notices.words import Say, Wording, message, notice_words


@message
def visit_reminder(_: Say) -> Wording:
    return notice_words(_, _("You have a visit coming up."))


async def send_visit_reminder(*, patient_id: int, visit_public_id: str, confidential: bool) -> int:
    """Everyone who follows the record's visits hears of one coming up (a confidential one:
    the patient alone); how many were told."""
    return await notify_patient(
        patient_id=patient_id,
        category="appointments",
        event=f"visit-{visit_public_id}",
        words=visit_reminder,
        confidential=confidential,
    )
