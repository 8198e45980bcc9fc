"""A result has reached the patient."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import notify_patient
from app.notices.words import Message

RESULT_READY = Message("result_ready", subject=N_("You have a new test result."))


def result_notice_url(public_id: str) -> str:
    """Where a result's notice leads: the report itself, named by its random public id only."""
    return f"/results/{public_id}"


async def send_result_ready(*, patient_id: int, report_public_id: str, confidential: bool) -> int:
    """Everyone who follows the record's results hears that one is ready (a confidential one:
    the patient alone), with nothing about the test; how many were told."""
    return await notify_patient(
        patient_id=patient_id,
        category="results",
        event=f"result-{report_public_id}",
        words=RESULT_READY.words,
        confidential=confidential,
        url=result_notice_url(report_public_id),
    )
