"""Follow-up of invited patients: the habit that matters most for enrollment. A patient whose
latest invitation is older than PORTAL_FOLLOW_UP_DAYS, unused, and who has no account of
their own gets a reminder with a new link, by text (else email), from the dashboard's list
in one click or by the worker when PORTAL_FOLLOW_UP_AUTO is on.

Never more than PORTAL_FOLLOW_UP_MAX reminders: each is claimed (the count raised in one
statement that checks the cap) before it is sent, so two clicks or two workers cannot send
one too many. A patient who asked not to be reminded is marked so, and never is again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.access import StaffActor
from app.clinic import clinic_profile
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_staff
from app.services.console.patients import audit_staff_saw
from app.services.dashboard.rollup import FOLLOW_UP_DUE, current_month, figure_set
from app.services.enrollment import invite_create
from app.services.facts import as_utc
from app.services.self_access import SelfAccessError
from app.settings import get_settings
from app.tables import FollowUp, Patient

log = logging.getLogger("portal.follow_up")

LIST_SIZE = 50

# Invited patients due a reminder: their newest invitation, unused and older than the wait;
# no account of their own; a phone or email to send to; not opted out; under the cap.
_DUE = """
    FROM enrollment_invite i
    JOIN patient p ON p.id = i.patient
    LEFT JOIN clinician c ON c.id = p.primary_clinician
    LEFT JOIN follow_up f ON f.patient = i.patient
    WHERE i.used_at IS NULL AND i.created_at <= {} AND p.deceased_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM enrollment_invite j WHERE j.patient = i.patient
          AND j.id <> i.id AND (j.created_at > i.created_at OR j.used_at IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM access_grant g WHERE g.patient = i.patient
          AND g.kind = 'self' AND g.revoked_at IS NULL)
      AND f.opted_out_at IS NULL AND COALESCE(f.reminders, 0) < {}
      AND (COALESCE(p.phone, '') <> '' OR COALESCE(p.email, '') <> '')
"""


@dataclass(frozen=True)
class FollowUpLine:
    patient_id: int
    public_id: str  # the patient's
    given_name: str
    family_name: str
    mrn: str
    invited_at: datetime
    via: str  # how the reminder goes: sms | email
    reminders: int


def _due_values() -> list[Any]:
    settings = get_settings()
    return [utcnow() - timedelta(days=settings.follow_up_days), settings.follow_up_max]


async def follow_ups_due(*, limit: int = LIST_SIZE) -> list[FollowUpLine]:
    rows = await Patient.raw(
        f"""
        SELECT p.id, p.public_id, p.given_name, p.family_name, p.mrn, p.phone, p.email,
               i.created_at, i.via, COALESCE(f.reminders, 0) AS reminders
        {_DUE}
        ORDER BY i.created_at, p.id LIMIT {{}}
        """,
        *_due_values(),
        limit,
    )
    return [
        FollowUpLine(
            patient_id=int(row["id"]),
            public_id=row["public_id"],
            given_name=row["given_name"],
            family_name=row["family_name"],
            mrn=row["mrn"],
            invited_at=as_utc(row["created_at"]),
            via=_channel(row),
            reminders=int(row["reminders"]),
        )
        for row in rows
    ]


async def follow_up_list(*, staff: StaffActor) -> list[FollowUpLine]:
    """The list staff see, each patient on it audited as seen (their access history)."""
    lines = await follow_ups_due()
    await audit_staff_saw(
        staff=staff,
        action="dashboard.follow_up_list",
        patients=[(line.patient_id, line.public_id) for line in lines],
    )
    return lines


def _channel(row: dict[str, Any]) -> str:
    """The invitation's own channel when it was a text or an email, else the phone first."""
    if row["via"] == "email" and row["email"]:
        return "email"
    return "sms" if row["phone"] else "email"


async def follow_up_counts() -> dict[int, int]:
    """How many are due, for the clinic (0) and by location (the primary clinician's)."""
    rows = await Patient.raw(
        f"SELECT c.location AS location, COUNT(*) AS n {_DUE} GROUP BY c.location",
        *_due_values(),
    )
    counts = {0: 0}
    for row in rows:
        counts[0] += int(row["n"])
        if row["location"] is not None:
            counts[int(row["location"])] = int(row["n"])
    return counts


async def follow_up_figures_refresh() -> None:
    """Keep the dashboard's count of patients due a reminder (it never counts them itself)."""
    counts = await follow_up_counts()
    month = current_month()
    location_ids = {0, *counts}
    async with write_transaction():
        for location in location_ids:
            await figure_set(
                metric=FOLLOW_UP_DUE,
                month=month,
                location=location,
                numerator=float(counts.get(location, 0)),
            )


async def _claim(patient_id: int, now: datetime) -> bool:
    """Count one more reminder, if the cap and the opt-out allow it (in one statement)."""
    cap = get_settings().follow_up_max
    async with write_transaction():
        existing = await FollowUp.exists().where(FollowUp.patient == patient_id)
        if not existing:
            if cap < 1:
                return False
            await FollowUp.insert(FollowUp(patient=patient_id, reminders=1, last_reminded_at=now))
            return True
        claimed = await FollowUp.raw(
            """
            UPDATE follow_up SET reminders = reminders + 1, last_reminded_at = {}
            WHERE patient = {} AND opted_out_at IS NULL AND reminders < {}
            RETURNING id
            """,
            now,
            patient_id,
            cap,
        )
        return bool(claimed)


async def follow_up_send(*, staff: StaffActor | None, public_ids: tuple[str, ...] = ()) -> int:
    """Remind the patients due (or those of `public_ids` among them): a new link each, by
    their channel. Returns how many were sent."""
    due = await follow_ups_due(limit=10_000)
    if public_ids:
        chosen = set(public_ids)
        due = [line for line in due if line.public_id in chosen]
    settings = get_settings()
    sent = 0
    for line in due:
        if not await _claim(line.patient_id, utcnow()):
            continue
        try:
            await invite_create(
                mrn=line.mrn,
                via=line.via,
                base_url=settings.base_url,
                clinic_name=clinic_profile().name,
                staff_id=staff.staff_id if staff else None,
                reminder=True,
            )
        except (SelfAccessError, ValueError, NotFoundError) as error:
            # Counted, not sent: the record cannot have its own account by this contact.
            log.info("follow-up reminder not sent: %s", type(error).__name__)
            continue
        sent += 1
    await follow_up_figures_refresh()
    return sent


async def follow_up_opt_out(*, staff: StaffActor, public_id: str) -> None:
    """The patient asked not to be reminded: no reminder is ever sent to them again."""
    now = utcnow()
    async with write_transaction():
        patient = await Patient.select(Patient.id).where(Patient.public_id == public_id).first()
        if patient is None:
            raise NotFoundError(public_id)
        patient_id = int(patient["id"])
        if await FollowUp.exists().where(FollowUp.patient == patient_id):
            await FollowUp.update({FollowUp.opted_out_at: now}).where(
                FollowUp.patient == patient_id
            )
        else:
            await FollowUp.insert(FollowUp(patient=patient_id, opted_out_at=now))
        await audit_staff(
            staff=staff,
            action="dashboard.follow_up_opt_out",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=public_id,
        )
    await follow_up_figures_refresh()


async def follow_ups_send_due() -> int:
    """The worker's duty: remind those due, when the clinic turned automatic reminders on."""
    if not get_settings().follow_up_auto:
        return 0
    return await follow_up_send(staff=None)
