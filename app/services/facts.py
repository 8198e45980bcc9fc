"""Facts: what happened, recorded by the feature where it happens, in the caller's
transaction, for the clinic's dashboard (app/services/dashboard/). A fact names a patient,
a location, a moment, how it happened (its channel) and a figure; never what a message said
or what a result showed.

Every kind is listed here, once, with the portal area it counts as use of. Payments are
recorded by the bills area when a payment succeeds (app/services/bills/payments.py): paid
in the portal, by guest pay or by a plan counts as "through the portal"; one staff take
does not.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from app.access import Actor
from app.clinic import clinic_profile
from app.clock import utcnow
from app.db import write_transaction
from app.tables import Fact, Patient

# kind -> the area it counts as use of (when done through the portal), or "" for none.
KINDS: dict[str, str] = {
    "invited": "",  # an enrollment link was sent or shown (channel: sms, email, print, qr)
    "invite_reminded": "",  # a follow-up reminder to an invited patient who has not joined
    "enrolled": "",  # the patient's own account was made
    "signed_in": "",  # a patient account signed in, looking at this record
    "app_installed": "",  # added to the home screen (appinstalled, or opened standalone)
    "push_enabled": "",  # a device turned notifications on
    "result_released": "",  # a result the patient can see now
    "result_viewed": "results",  # first opened; value 1 when the same clinic day as released
    "message_sent": "messages",  # the patient started a conversation
    "message_answered": "",  # the clinic's first answer; value: minutes after the question
    "reply_read": "messages",  # the patient read the clinic's answer
    "visit_booked": "visits",  # channel: portal | staff | phone
    "visit_cancelled": "visits",  # channel: portal | staff
    "visit_noshow": "",  # the patient did not come (from the record system)
    "payment": "bills",  # channel: portal | staff | phone | mail; value: the amount
    "survey_ease": "",  # "How easy was that?" 1-5
    "survey_recommend": "",  # "Would you recommend us?" 0-10
}
# A use of an area counts only when the patient did it through the portal.
PORTAL = "portal"


def as_utc(value: Any) -> datetime:
    """A timestamp as the database hands it back (SQLite may give text), in UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(type(value).__name__)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def clinic_day(moment: datetime) -> date:
    """The clinic-local day of a moment: months turn over at the clinic's midnight."""
    return moment.astimezone(clinic_profile().timezone).date()


async def patient_location(patient_id: int) -> int | None:
    """The location a patient belongs to: their primary clinician's."""
    row = (
        await Patient.select(Patient.primary_clinician.location)
        .where(Patient.id == patient_id)
        .first()
    )
    if row is None:
        return None
    value = row.get("primary_clinician.location")
    return int(value) if value is not None else None


async def record_fact(
    kind: str,
    patient_id: int | None,
    location_id: int | None = None,
    occurred_at: datetime | None = None,
    *,
    channel: str = "",
    value: float | None = None,
) -> None:
    """Insert one fact, in the caller's transaction. Without a location, the patient's."""
    if location_id is None and patient_id is not None:
        location_id = await patient_location(patient_id)
    await Fact.insert(
        fact_row(kind, patient_id, location_id, occurred_at or utcnow(), channel, value)
    )


async def install_record(actor: Actor, *, standalone: bool) -> None:
    """The portal was added to the home screen (the browser's `appinstalled`), or opened
    from it (standalone display mode): counted once per record."""
    patient_id = actor.acting_patient_id
    if patient_id is None:
        return
    async with write_transaction():
        if await Fact.exists().where(Fact.patient == patient_id, Fact.kind == "app_installed"):
            return
        await record_fact(
            "app_installed", patient_id, channel="standalone" if standalone else "portal"
        )


def fact_row(
    kind: str,
    patient_id: int | None,
    location_id: int | None,
    occurred_at: datetime,
    channel: str = "",
    value: float | None = None,
) -> Fact:
    """A fact ready to insert (many at once, for the demo clinic and the benchmark)."""
    if kind not in KINDS:
        raise ValueError(kind)
    day = clinic_day(occurred_at)
    return Fact(
        kind=kind,
        area=KINDS[kind] if channel in ("", PORTAL) else "",
        patient=patient_id,
        location=location_id,
        occurred_at=occurred_at,
        day=day,
        month=day.replace(day=1),
        channel=channel[:10],
        value=value,
    )


__all__ = [
    "KINDS",
    "PORTAL",
    "as_utc",
    "clinic_day",
    "fact_row",
    "install_record",
    "patient_location",
    "record_fact",
]
