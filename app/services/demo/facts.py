"""The demo clinic's facts: a year and more of portal use, drawn from the seeded rows (visits
booked and missed, results released and opened, questions asked and answered) and from a
deterministic story of invitations, sign-ins, installs, notifications and survey answers,
so the dashboard shows real figures, trends and a follow-up list. No payments: the bills
area records those once it exists, and until then the dashboard says so.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.services.facts import as_utc, fact_row
from app.tables import (
    AccessGrant,
    Appointment,
    Conversation,
    EnrollmentInvite,
    Fact,
    LabReport,
    Patient,
    SurveyAnswer,
)

SEED = 20261204
BATCH = 400
# Comments patients left with their answers (no health details, as the survey asks).
COMMENTS = (
    "Booking took less than a minute.",
    "I could not find the evening times at first.",
    "Great to get the answer the same day.",
    "The text link worked right away.",
    "Please add more Saturday times.",
    "Muy fácil, gracias.",
)


def _moment(day: date, zone: ZoneInfo, rng: random.Random) -> datetime:
    local = datetime.combine(day, time(rng.randint(7, 21), rng.randint(0, 59)), tzinfo=zone)
    return local.astimezone(UTC)


async def demo_facts_seed(*, today: date, zone: ZoneInfo) -> None:
    """Inside the seed's transaction, after every other row exists."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    facts: list[Fact] = []
    patients = await Patient.select(
        Patient.id,
        Patient.birth_date,
        Patient.phone,
        Patient.email,
        Patient.primary_clinician.location.as_alias("location"),
    ).order_by(Patient.id)
    with_account = {
        int(row["patient"])
        for row in await AccessGrant.select(AccessGrant.patient).where(
            AccessGrant.kind == "self", AccessGrant.revoked_at.is_null()
        )
    }
    invites: list[EnrollmentInvite] = []
    answers: list[SurveyAnswer] = []
    account_of = {
        int(row["patient"]): int(row["account"])
        for row in await AccessGrant.select(AccessGrant.patient, AccessGrant.account).where(
            AccessGrant.kind == "self"
        )
    }
    for row in patients:
        pid, location = int(row["id"]), row["location"]
        adult = (today - row["birth_date"]).days >= 18 * 365
        if not adult and pid not in with_account:
            continue
        draw = rng.random()
        invited = _moment(today - timedelta(days=rng.randint(12, 420)), zone, rng)
        via = "sms" if row["phone"] else ("email" if row["email"] else "print")
        if pid in with_account or draw < 0.55:
            facts.append(fact_row("invited", pid, location, invited, via))
            joined = invited + timedelta(hours=rng.randint(1, 72))
            if joined > now:
                continue
            facts.append(fact_row("enrolled", pid, location, joined))
            facts += _portal_life(rng, pid, location, joined, now, zone, account_of, answers)
        elif draw < 0.68 and via != "print":
            # Invited, never signed in: the dashboard's follow-up list.
            recent = _moment(today - timedelta(days=rng.randint(8, 40)), zone, rng)
            facts.append(fact_row("invited", pid, location, recent, via))
            invites.append(
                EnrollmentInvite(
                    patient=pid,
                    token_hash=f"demo-{pid:058d}",
                    via=via,
                    created_at=recent,
                    expires_at=recent + timedelta(days=7),
                )
            )
    facts += await _from_rows(now)
    for start in range(0, len(facts), BATCH):
        await Fact.insert(*facts[start : start + BATCH])
    if invites:
        await EnrollmentInvite.insert(*invites)
    if answers:
        await SurveyAnswer.insert(*answers)


def _portal_life(
    rng: random.Random,
    pid: int,
    location: int | None,
    joined: datetime,
    now: datetime,
    zone: ZoneInfo,
    account_of: dict[int, int],
    answers: list[SurveyAnswer],
) -> list[Fact]:
    """Sign-ins month by month (fewer as time goes on for some), an install, notifications
    turned on, and now and then a survey answer."""
    facts: list[Fact] = []
    keen = rng.random()
    if rng.random() < 0.36:
        when = joined + timedelta(days=rng.randint(0, 60))
        if when < now:
            facts.append(fact_row("app_installed", pid, location, when, "portal"))
    if rng.random() < 0.5:
        when = joined + timedelta(days=rng.randint(0, 30))
        if when < now:
            facts.append(fact_row("push_enabled", pid, location, when, "portal"))
    day = joined.astimezone(zone).date()
    last_recommend: datetime | None = None
    while True:
        when = _moment(day, zone, rng)
        if when > now:
            break
        if rng.random() < 0.35 + 0.5 * keen:
            facts.append(fact_row("signed_in", pid, location, when, "passkey"))
            if rng.random() < 0.18:
                score = rng.choices((2, 3, 4, 5), weights=(1, 2, 5, 6))[0]
                facts.append(fact_row("survey_ease", pid, location, when, "portal", score))
                account = account_of.get(pid)
                # The personas' answers are old enough that the survey asks them again.
                if account is not None and now - when > timedelta(days=100):
                    answers.append(
                        SurveyAnswer(
                            account=account,
                            patient=pid,
                            question="ease",
                            task=rng.choice(("booking", "reply_read")),
                            score=score,
                            comment=rng.choice(COMMENTS) if rng.random() < 0.5 else "",
                            created_at=when,
                        )
                    )
                if last_recommend is None or when - last_recommend > timedelta(days=91):
                    last_recommend = when
                    value = rng.choices(range(5, 11), weights=(1, 1, 2, 4, 5, 6))[0]
                    facts.append(fact_row("survey_recommend", pid, location, when, "portal", value))
        day += timedelta(days=rng.randint(14, 45))
    return facts


async def _from_rows(now: datetime) -> list[Fact]:
    """What the seeded visits, results and conversations say happened, as facts."""
    facts: list[Fact] = []
    visits = await Appointment.select(
        Appointment.patient,
        Appointment.location,
        Appointment.starts_at,
        Appointment.status,
        Appointment.channel,
        Appointment.created_at,
        Appointment.cancelled_at,
    )
    for visit in visits:
        booked = as_utc(visit["created_at"])
        if booked <= now:
            facts.append(
                fact_row(
                    "visit_booked", visit["patient"], visit["location"], booked, visit["channel"]
                )
            )
        if visit["status"] == "noshow":
            facts.append(
                fact_row("visit_noshow", visit["patient"], visit["location"], visit["starts_at"])
            )
        if visit["status"] == "cancelled" and visit["cancelled_at"] is not None:
            facts.append(
                fact_row(
                    "visit_cancelled", visit["patient"], visit["location"], visit["cancelled_at"]
                )
            )
    reports = await LabReport.select(
        LabReport.patient,
        LabReport.released_at,
        LabReport.first_viewed_at,
        LabReport.patient._.primary_clinician._.location.as_alias("location"),
    ).where(LabReport.released_at.is_not_null())
    for report in reports:
        released = as_utc(report["released_at"])
        if released > now:
            continue
        facts.append(fact_row("result_released", report["patient"], report["location"], released))
        if report["first_viewed_at"] is not None:
            viewed = as_utc(report["first_viewed_at"])
            row = fact_row("result_viewed", report["patient"], report["location"], viewed)
            row.value = float(row.day == fact_row("result_released", None, None, released).day)
            facts.append(row)
    threads = await Conversation.select(
        Conversation.patient,
        Conversation.location,
        Conversation.created_at,
        Conversation.first_response_at,
        Conversation.first_response_minutes,
    )
    for thread in threads:
        asked = as_utc(thread["created_at"])
        facts.append(fact_row("message_sent", thread["patient"], thread["location"], asked))
        if thread["first_response_at"] is not None and thread["first_response_minutes"] is not None:
            facts.append(
                fact_row(
                    "message_answered",
                    thread["patient"],
                    thread["location"],
                    as_utc(thread["first_response_at"]),
                    "portal",
                    float(thread["first_response_minutes"]),
                )
            )
    return facts
