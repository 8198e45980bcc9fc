"""The demo clinic: deterministic synthetic data for a given day, so screens look lived in.

Riverside Family Health, two locations, six clinicians, 300+ patients of every age, families,
two years of lab history, visits past and upcoming, and conversations with the care team.
Nothing here describes a real person.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.table import Table

from app.clock import utcnow
from app.db import write_transaction
from app.i18n import N_
from app.services.dashboard import dashboard_refresh
from app.services.demo.bills import BILL_TABLES, seed_bills
from app.services.demo.facts import demo_facts_seed
from app.services.demo.record import seed_demo_records
from app.services.messages.targets import (
    DEFAULT_HOURS,
    BusinessCalendar,
    deadlines,
    previous_close,
)
from app.services.messages.threads import TOPIC_POOLS
from app.services.outreach.news import news_forget
from app.services.results.panels import A1C, BMP, CBC, CHLAMYDIA, LIPIDS, TSH, Panel, interpretation
from app.services.visits.slots import slots_generate
from app.tables import (
    AccessGrant,
    Account,
    Allergy,
    Appointment,
    AppointmentType,
    AuditChainHead,
    AuditEvent,
    Campaign,
    CampaignSend,
    CareRecall,
    ClinicHoliday,
    ClinicHours,
    Clinician,
    Conversation,
    ConversationNote,
    DashboardFigure,
    Fact,
    FhirSource,
    Immunization,
    LabObservation,
    LabReport,
    Location,
    Medication,
    Message,
    MessageAttachment,
    NewsNote,
    Organization,
    Patient,
    Problem,
    RecordDocument,
    RefillRequest,
    ReplyTemplate,
    ScheduleBlock,
    ScheduleTemplate,
    Slot,
    SmsOptOut,
    StaffUser,
    VisitSummary,
    WaitlistEntry,
    WaitlistOffer,
    WebSession,
)

SEED = 20261123
CLINIC_ZONE = ZoneInfo("America/New_York")
PATIENT_COUNT = 320
BATCH = 400


@dataclass(frozen=True)
class Persona:
    slug: str
    mrn: str
    summary: str


# Demo sign-in personas (README). Each signs in as the account holding a self grant.
PERSONAS: tuple[Persona, ...] = (
    Persona("maria", "RFH-100001", N_("Maria Lopez, 38: a parent of Emma (7) and Lucas (15)")),
    Persona("david", "RFH-100004", N_("David Chen, 52: cares for his father Walter (82)")),
    Persona("james", "RFH-100006", N_("James Wilson, 67: type 2 diabetes, frequent lab work")),
)

GIVEN_FEMALE = (
    "Olivia Emma Ava Sophia Isabella Mia Amelia Harper Evelyn Abigail Ella Grace Chloe "
    "Camila Lucia Valentina Aaliyah Nora Zoe Hannah Layla Aria Rosa Carmen Mei Priya Fatima "
    "Ruth Dorothy Margaret Helen Joan Linda Patricia Susan Karen Nancy Betty Gloria Yolanda"
).split()
GIVEN_MALE = (
    "Liam Noah Oliver Elijah James William Benjamin Lucas Henry Mateo Santiago Diego Leo "
    "Ethan Jacob Daniel Samuel Omar Wei Raj Kwame Andre Carlos Jose Luis Miguel Robert John "
    "Richard Thomas Charles George Frank Walter Harold Arthur Eugene Ray Joseph Kevin"
).split()
FAMILY = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Patel Kim Chen Okafor Mensah Cohen Murphy Rossi Novak"
).split()
STREETS = "Maple Oak Pine Cedar Elm Willow River Lake Hill Park Church Main Spring Mill".split()


@dataclass
class _Built:
    """Everything the seed creates, kept for linking rows together."""

    location_ids: list[int]
    clinician_ids: list[int]
    pediatric_ids: list[int]
    adult_ids: list[int]
    nurse_id: int


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CLINIC_ZONE).astimezone(UTC)


def _weekday_on_or_after(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


async def _insert(table: type[Table], rows: Sequence[Table]) -> list[int]:
    """Insert in batches and return the new ids in order."""
    ids: list[int] = []
    for start in range(0, len(rows), BATCH):
        result = await table.insert(*rows[start : start + BATCH]).returning(table._meta.primary_key)
        ids.extend(row["id"] for row in result)
    return ids


async def _wipe() -> None:
    for table in (
        *BILL_TABLES,
        DashboardFigure,
        Fact,
        AuditEvent,
        CampaignSend,
        Campaign,
        NewsNote,
        SmsOptOut,
        WebSession,
        MessageAttachment,
        ConversationNote,
        RefillRequest,
        ReplyTemplate,
        ClinicHours,
        ClinicHoliday,
        Message,
        Conversation,
        LabObservation,
        LabReport,
        RecordDocument,
        VisitSummary,
        Medication,
        Allergy,
        Immunization,
        Problem,
        FhirSource,
        WaitlistOffer,
        WaitlistEntry,
        CareRecall,
        Appointment,
        Slot,
        ScheduleBlock,
        ScheduleTemplate,
        AppointmentType,
        AccessGrant,
        Account,
        StaffUser,
        Patient,
        Clinician,
        Location,
        Organization,
    ):
        await table.delete(force=True)
    # The trail was emptied with everything else: its chain starts again from the first row.
    await AuditChainHead.update(
        {AuditChainHead.last_seq: 0, AuditChainHead.last_hash: ""}, force=True
    )


async def demo_clinic_exists() -> bool:
    return bool(await Organization.exists().where(Organization.name == "Riverside Family Health"))


async def demo_clinic_seed(*, today: date | None = None, reset: bool = False) -> bool:
    """Seed the demo clinic. Returns False (and changes nothing) if data exists and not reset."""
    today = today or datetime.now(CLINIC_ZONE).date()
    rng = random.Random(SEED)
    async with write_transaction():
        if reset:
            await _wipe()
        elif await Organization.exists():
            return False
        built = await _seed_clinic()
        patients = await _seed_patients(rng, built, today)
        await _seed_families(built, today)
        await _seed_history(rng, built, patients, today)
        await _seed_scheduling(built, patients)
        await _seed_message_desk(rng, built, patients, today)
        await _seed_news()
        await seed_bills(today)
        await seed_demo_records(today)
        await demo_facts_seed(today=today, zone=CLINIC_ZONE)
    # The dashboard's figures for the year, as the worker would roll them up.
    await dashboard_refresh(months=13, today=today)
    return True


async def _seed_news() -> None:
    """The clinic closing the loop on its patients' feedback: home shows this note."""
    await NewsNote.insert(
        NewsNote(
            title="Evening visits on Tuesdays",
            body="You asked for visits after work: on Tuesdays we now see patients until 7 pm."
            " Book one in the portal.",
            title_es="Citas por la tarde los martes",
            body_es="Nos pidieron citas después del trabajo: los martes atendemos hasta las"
            " 7 pm. Pida una en el portal.",
        )
    )
    news_forget()  # a demo reset while serving shows the new note at once


async def _seed_clinic() -> _Built:
    org = Organization(
        name="Riverside Family Health", phone="(555) 010-0100", timezone=str(CLINIC_ZONE)
    )
    await Organization.insert(org)
    location_ids = await _insert(
        Location,
        [
            Location(
                organization=org.id,
                code="MAIN",
                name="Riverside Main Clinic",
                address_line="120 River Street",
                city="Springfield",
                state="MA",
                postal_code="01103",
                phone="(555) 010-0100",
                timezone=str(CLINIC_ZONE),
            ),
            Location(
                organization=org.id,
                code="NORTH",
                name="Northside Clinic",
                address_line="45 Oak Avenue",
                city="Springfield",
                state="MA",
                postal_code="01107",
                phone="(555) 010-0200",
                timezone=str(CLINIC_ZONE),
            ),
        ],
    )
    main, north = location_ids
    roster = [
        ("Dr.", "Ana", "Ruiz", "MD", "Family medicine", main),
        ("Dr.", "James", "Okafor", "MD", "Internal medicine", main),
        ("Dr.", "Priya", "Shah", "MD", "Pediatrics", main),
        ("Dr.", "Michael", "Brennan", "DO", "Family medicine", north),
        ("", "Laura", "Kim", "NP", "Family medicine", north),
        ("Dr.", "Sofia", "Alvarez", "MD", "Pediatrics", north),
    ]
    clinician_ids = await _insert(
        Clinician,
        [
            Clinician(
                prefix=prefix,
                given_name=given,
                family_name=family,
                credentials=credentials,
                specialty=specialty,
                npi=f"19{index:08d}",
                location=location,
            )
            for index, (prefix, given, family, credentials, specialty, location) in enumerate(
                roster, start=1
            )
        ],
    )
    staff = [
        ("Rosa", "Diaz", "admin", None),
        ("Tom", "Becker", "front_desk", None),
        ("Aisha", "Bello", "nurse", None),
        ("Ana", "Ruiz", "clinician", clinician_ids[0]),
        ("Grace", "Liu", "billing", None),
        ("Lena", "Park", "manager", None),
    ]
    staff_ids = await _insert(
        StaffUser,
        [
            StaffUser(
                given_name=given,
                family_name=family,
                email=f"{given.lower()}.{family.lower()}@riverside.example",
                role=role,
                clinician=clinician,
                location=main,
            )
            for given, family, role, clinician in staff
        ],
    )
    return _Built(
        location_ids=location_ids,
        clinician_ids=clinician_ids,
        pediatric_ids=[clinician_ids[2], clinician_ids[5]],
        adult_ids=[clinician_ids[0], clinician_ids[1], clinician_ids[3], clinician_ids[4]],
        nurse_id=staff_ids[2],
    )


# The named families: (mrn, given, family, sex, age in years, days since birthday, phone, email)
_FAMILY_PATIENTS = (
    ("RFH-100001", "Maria", "Lopez", "female", 38, 120, "+15550101001", "maria@example.com"),
    ("RFH-100002", "Emma", "Lopez", "female", 7, 200, None, None),
    ("RFH-100003", "Lucas", "Lopez", "male", 15, 40, "+15550101003", None),
    ("RFH-100004", "David", "Chen", "male", 52, 300, "+15550101004", "david@example.com"),
    ("RFH-100005", "Walter", "Chen", "male", 82, 15, "+15550101005", None),
    ("RFH-100006", "James", "Wilson", "male", 67, 90, "+15550101006", "james@example.com"),
)


def _persona_clinician(mrn: str, drawn: int, built: _Built) -> int:
    """James sees Dr. Ruiz, the demo's doctor persona: his refill requests are hers to decide.
    (The draw is still made, so everyone else's data stays the same.)"""
    return built.clinician_ids[0] if mrn == "RFH-100006" else drawn


def _birth(today: date, years: int, days_since_birthday: int) -> date:
    anchor = today - timedelta(days=days_since_birthday)
    try:
        return anchor.replace(year=anchor.year - years)
    except ValueError:  # 29 February
        return anchor.replace(year=anchor.year - years, day=28)


async def _seed_patients(
    rng: random.Random, built: _Built, today: date
) -> list[tuple[int, str, date]]:
    rows: list[Patient] = []
    for mrn, given, family, sex, years, days, phone, email in _FAMILY_PATIENTS:
        birth = _birth(today, years, days)
        rows.append(
            Patient(
                mrn=mrn,
                given_name=given,
                family_name=family,
                birth_date=birth,
                sex=sex,
                phone=phone,
                email=email,
                # Lucas's phone is his, not his mother's: his own account may use it.
                phone_is_own=mrn == "RFH-100003",
                preferred_language="en",
                address_line=f"{rng.randint(10, 990)} {rng.choice(STREETS)} Street",
                city="Springfield",
                state="MA",
                postal_code="01103",
                primary_clinician=_persona_clinician(
                    mrn,
                    rng.choice(built.pediatric_ids if years < 18 else built.adult_ids),
                    built,
                ),
            )
        )
    for number in range(len(rows) + 1, PATIENT_COUNT + 1):
        sex = rng.choice(("female", "male"))
        years = min(int(rng.triangular(0, 95, 42)), 97)
        birth = _birth(today, years, rng.randint(0, 364))
        given = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
        family = rng.choice(FAMILY)
        adult = years >= 18
        rows.append(
            Patient(
                mrn=f"RFH-{100000 + number}",
                given_name=given,
                family_name=family,
                birth_date=birth,
                sex=sex,
                phone=f"+1555{rng.randint(2000000, 9999999)}" if adult else None,
                email=f"{given.lower()}.{family.lower()}{number}@example.com"
                if adult and rng.random() < 0.7
                else None,
                preferred_language="es" if rng.random() < 0.18 else "en",
                address_line=f"{rng.randint(10, 990)} {rng.choice(STREETS)} Street",
                city="Springfield",
                state="MA",
                postal_code=rng.choice(("01103", "01107", "01109")),
                primary_clinician=rng.choice(built.adult_ids if adult else built.pediatric_ids),
            )
        )
    ids = await _insert(Patient, rows)
    return [(pid, row.sex, row.birth_date) for pid, row in zip(ids, rows, strict=True)]


async def _seed_families(built: _Built, today: date) -> None:
    """Accounts and grants for the personas: self grants, guardians of minors, an adult child."""
    by_mrn = {
        row["mrn"]: row["id"]
        for row in await Patient.select(Patient.id, Patient.mrn).where(
            Patient.mrn.is_in([entry[0] for entry in _FAMILY_PATIENTS])
        )
    }
    admin = await StaffUser.select(StaffUser.id).where(StaffUser.role == "admin").first()
    admin_id = admin["id"] if admin else None
    accounts = {
        "maria": Account(display_name="Maria Lopez"),
        "david": Account(display_name="David Chen"),
        "james": Account(display_name="James Wilson"),
        "walter": Account(display_name="Walter Chen"),
    }
    ids = await _insert(Account, list(accounts.values()))
    account_id = dict(zip(accounts, ids, strict=True))
    started = datetime.combine(today - timedelta(days=400), time(12), tzinfo=UTC)
    grants = [
        AccessGrant(account=account_id["maria"], patient=by_mrn["RFH-100001"], kind="self"),
        AccessGrant(account=account_id["david"], patient=by_mrn["RFH-100004"], kind="self"),
        AccessGrant(account=account_id["james"], patient=by_mrn["RFH-100006"], kind="self"),
        AccessGrant(account=account_id["walter"], patient=by_mrn["RFH-100005"], kind="self"),
        AccessGrant(
            account=account_id["maria"],
            patient=by_mrn["RFH-100002"],
            kind="proxy",
            relationship="parent",
            scope="full",
            granted_by_staff=admin_id,
        ),
        AccessGrant(
            account=account_id["maria"],
            patient=by_mrn["RFH-100003"],
            kind="proxy",
            relationship="parent",
            scope="full",
            granted_by_staff=admin_id,
        ),
        AccessGrant(
            account=account_id["david"],
            patient=by_mrn["RFH-100005"],
            kind="proxy",
            relationship="child",
            scope="full",
            granted_by_account=account_id["walter"],
        ),
    ]
    for grant in grants:
        grant.starts_at = started
        grant.created_at = started
    await _insert(AccessGrant, grants)


def _panels_for(age: int, sex: str, chronic: bool) -> list[Panel]:
    if age < 12:
        return [CBC]
    if age < 18:
        panels = [CBC]
        return panels
    panels = [CBC, BMP, LIPIDS]
    if chronic:
        panels.append(A1C)
    if sex == "female" and age >= 40:
        panels.append(TSH)
    return panels


async def _seed_history(
    rng: random.Random,
    built: _Built,
    patients: list[tuple[int, str, date]],
    today: date,
) -> None:
    persona_ids = {pid for pid, _, _ in patients[: len(_FAMILY_PATIENTS)]}
    lucas_id = patients[2][0]
    james_id = patients[5][0]
    now = datetime.now(UTC)
    reports: list[LabReport] = []
    report_observations: list[list[dict[str, Any]]] = []
    appointments: list[Appointment] = []
    conversations: list[tuple[Conversation, list[Message]]] = []
    clinic_ids = built.clinician_ids
    location_of = {cid: built.location_ids[0 if i < 3 else 1] for i, cid in enumerate(clinic_ids)}

    for pid, sex, birth in patients:
        age = _age(birth, today)
        chronic = pid == james_id or (age >= 45 and rng.random() < 0.3)
        clinician = rng.choice(built.pediatric_ids) if age < 18 else rng.choice(built.adult_ids)
        # Baselines: a person's values sit around their own level, so trends look real.
        baseline = {
            "2345-7": rng.gauss(118 if chronic else 88, 8),
            "4548-4": 7.2 if chronic else 5.2,
        }
        visits_per_year = 3 if chronic else (2 if age < 5 or age > 70 else 1)
        draws = visits_per_year * 2 if pid in persona_ids or rng.random() < 0.85 else 0
        if age < 1:
            draws = min(draws, 1)
        for draw in range(draws):
            # Spread over two years; the newest draw within the last few months.
            days_ago = 3 + int(727 * (draw + rng.random()) / draws)
            day = _weekday_on_or_after(today - timedelta(days=days_ago))
            start = _local(day, rng.choice((8, 9, 10, 11, 13, 14, 15, 16)), rng.choice((0, 30)))
            visit_type = (
                "well_child"
                if age < 18
                else ("follow_up" if chronic and draw % 2 else "annual_physical")
            )
            appointments.append(
                Appointment(
                    patient=pid,
                    clinician=clinician,
                    location=location_of[clinician],
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                    visit_type=visit_type,
                    status="fulfilled" if rng.random() < 0.94 else "noshow",
                    channel=rng.choice(("staff", "phone", "portal")),
                    created_at=start - timedelta(days=20),
                )
            )
            # The newest draw of a persona stays unviewed, so "new result" shows.
            newest = draw == 0
            for panel in _panels_for(age, sex, chronic):
                if panel is A1C and not chronic:
                    continue
                issued = start + timedelta(hours=rng.randint(4, 30))
                report = LabReport(
                    patient=pid,
                    loinc=panel.loinc,
                    name=panel.name,
                    status="final",
                    effective_at=start,
                    issued_at=issued,
                    released_at=issued,
                    ordering_clinician=clinician,
                    clinician_comment=_comment(rng) if rng.random() < 0.3 else None,
                    first_viewed_at=None
                    if newest
                    else issued + timedelta(hours=rng.randint(1, 72)),
                )
                observations = []
                for analyte in panel.analytes:
                    low, high = analyte.range_for(sex)
                    value = _value(rng, analyte.loinc, low, high, baseline, draw)
                    observations.append(
                        {
                            "loinc": analyte.loinc,
                            "name": analyte.name,
                            "unit": analyte.unit,
                            "value_number": round(value, analyte.decimals),
                            "reference_low": low if low > 0 else None,
                            "reference_high": high,
                            "interpretation": interpretation(
                                round(value, analyte.decimals), low, high
                            ),
                            "effective_at": start,
                        }
                    )
                reports.append(report)
                report_observations.append(observations)
        if pid == lucas_id:
            # A confidential result: the adolescent sees it, a guardian does not (docs/security.md).
            start = _local(_weekday_on_or_after(today - timedelta(days=12)), 15, 30)
            reports.append(
                LabReport(
                    patient=pid,
                    loinc=CHLAMYDIA.loinc,
                    name=CHLAMYDIA.name,
                    effective_at=start,
                    issued_at=start + timedelta(hours=20),
                    released_at=start + timedelta(hours=20),
                    ordering_clinician=clinician,
                    confidential=True,
                )
            )
            report_observations.append(
                [
                    {
                        "loinc": CHLAMYDIA.loinc,
                        "name": CHLAMYDIA.analytes[0].name,
                        "unit": "",
                        "value_text": "Not detected",
                        "interpretation": "N",
                        "effective_at": start,
                    }
                ]
            )
        if pid == james_id:
            # A pathology result on hold: the clinic's Results page releases it (or the hold
            # ends by itself); until then James does not see it.
            biopsy_at = now - timedelta(days=1)
            reports.append(
                LabReport(
                    patient=pid,
                    loinc="22637-3",
                    name="Skin biopsy (pathology)",
                    effective_at=biopsy_at - timedelta(days=3),
                    issued_at=biopsy_at,
                    released_at=None,
                    hold_until=biopsy_at + timedelta(hours=72),
                    ordering_clinician=clinician,
                )
            )
            report_observations.append(
                [
                    {
                        "loinc": "22637-3",
                        "name": "Diagnosis",
                        "unit": "",
                        "value_text": "Benign seborrheic keratosis",
                        "effective_at": biopsy_at,
                    }
                ]
            )
        # Upcoming visits for most people, and always for the personas.
        if pid in persona_ids or rng.random() < 0.55:
            for _ in range(rng.choice((1, 1, 2))):
                day = _weekday_on_or_after(today + timedelta(days=rng.randint(2, 60)))
                start = _local(
                    day, rng.choice((8, 9, 10, 11, 13, 14, 15, 16)), rng.choice((0, 15, 30, 45))
                )
                appointments.append(
                    Appointment(
                        patient=pid,
                        clinician=clinician,
                        location=location_of[clinician],
                        starts_at=start,
                        ends_at=start + timedelta(minutes=30),
                        visit_type=rng.choice(
                            ("follow_up", "annual_physical", "sick_visit", "lab_visit")
                        )
                        if age >= 18
                        else "well_child",
                        status="booked",
                        channel=rng.choice(("staff", "phone", "portal")),
                        created_at=now - timedelta(days=rng.randint(1, 30)),
                    )
                )
        if pid in persona_ids or rng.random() < 0.3:
            conversations.extend(
                _conversations(rng, pid, built.nurse_id, today, unread=pid in persona_ids)
            )

    appointments.append(_confidential_visit(lucas_id, built, today, now))
    conversations.append(_confidential_thread(lucas_id, built.nurse_id, today))
    await _insert(Appointment, appointments)
    report_ids = await _insert(LabReport, reports)
    observation_rows = [
        LabObservation(report=report_id, patient=report.patient, **fields)
        for report_id, report, observations in zip(
            report_ids, reports, report_observations, strict=True
        )
        for fields in observations
    ]
    await _insert(LabObservation, observation_rows)
    conversation_ids = await _insert(Conversation, [conv for conv, _ in conversations])
    messages = []
    for conversation_id, (_, thread_messages) in zip(conversation_ids, conversations, strict=True):
        for message in thread_messages:
            message.conversation = conversation_id
            messages.append(message)
    await _insert(Message, messages)


def _confidential_visit(patient_id: int, built: _Built, today: date, now: datetime) -> Appointment:
    """An adolescent's own visit: he sees it, his guardian does not (docs/security.md)."""
    start = _local(_weekday_on_or_after(today + timedelta(days=9)), 16, 0)
    return Appointment(
        patient=patient_id,
        clinician=built.pediatric_ids[0],
        location=built.location_ids[0],
        starts_at=start,
        ends_at=start + timedelta(minutes=30),
        visit_type="follow_up",
        status="booked",
        channel="portal",
        confidential=True,
        created_at=now - timedelta(days=2),
    )


def _confidential_thread(
    patient_id: int, nurse_id: int, today: date
) -> tuple[Conversation, list[Message]]:
    asked = _local(_weekday_on_or_after(today - timedelta(days=6)), 19, 40)
    answered = asked + timedelta(hours=14)
    return (
        Conversation(
            patient=patient_id,
            subject="A private question",
            topic="question",
            pool=TOPIC_POOLS["question"],
            status="open",
            confidential=True,
            created_at=asked,
            last_message_at=answered,
            first_response_at=answered,
            first_response_minutes=int((answered - asked).total_seconds() // 60),
        ),
        [
            Message(
                sender="patient",
                body="Is what I tell you private, even from my parents?",
                sent_at=asked,
                read_by_patient_at=asked,
            ),
            Message(
                sender="clinic",
                body="Yes. This conversation is only between you and your care team.",
                sent_at=answered,
                author_staff=nurse_id,
                read_by_patient_at=None,
            ),
        ],
    )


def _value(
    rng: random.Random, loinc: str, low: float, high: float, baseline: dict[str, float], draw: int
) -> float:
    if loinc in baseline:
        # A gentle drift over time: older draws a little higher (a patient working on it).
        return max(baseline[loinc] * (1 + 0.015 * draw) + rng.gauss(0, baseline[loinc] * 0.04), 0.0)
    if loinc in {"2093-3", "13457-7", "2571-8"}:
        middle = high * rng.uniform(0.65, 1.15)
        return max(rng.gauss(middle, high * 0.06), 1.0)
    middle = (low + high) / 2
    spread = (high - low) / 4.5
    return max(rng.gauss(middle, spread), 0.0)


_COMMENTS = (
    "Everything looks good. See you at your next visit.",
    "Slightly out of range, which is common. We will recheck at your next visit.",
    "Please keep taking your medicine as prescribed.",
    "Nice improvement since last time. Keep it up.",
)


def _comment(rng: random.Random) -> str:
    return rng.choice(_COMMENTS)


_THREADS = (
    (
        "question",
        "Question about my medicine",
        "Can I take my medicine with food?",
        "Yes, taking it with food is fine and can help with an upset stomach.",
    ),
    (
        "refill",
        "Refill request",
        "I am almost out of my prescription. Can you send a refill?",
        "We sent the refill to your pharmacy. It should be ready tomorrow.",
    ),
    (
        "appointment",
        "Follow-up visit",
        "Do I need a follow-up visit after my lab work?",
        "Yes, please book a visit in the next month so we can go over the results together.",
    ),
    (
        "other",
        "Form for school",
        "Can you fill out a form for school?",
        "The form is ready. You can pick it up at the front desk.",
    ),
)


def _conversations(
    rng: random.Random, patient_id: int, nurse_id: int, today: date, *, unread: bool
) -> list[tuple[Conversation, list[Message]]]:
    result = []
    for index in range(rng.randint(1, 2)):
        topic, subject, question, answer = rng.choice(_THREADS)
        asked = _local(_weekday_on_or_after(today - timedelta(days=rng.randint(1, 90))), 10, 5)
        answered = asked + timedelta(hours=rng.randint(1, 20))
        messages = [
            Message(sender="patient", body=question, sent_at=asked, read_by_patient_at=asked),
            Message(
                sender="clinic",
                body=answer,
                sent_at=answered,
                author_staff=nurse_id,
                read_by_patient_at=None if unread and index == 0 else answered + timedelta(hours=3),
            ),
        ]
        result.append(
            (
                Conversation(
                    patient=patient_id,
                    subject=subject,
                    topic=topic,
                    pool=TOPIC_POOLS[topic],
                    status="closed" if rng.random() < 0.6 else "open",
                    created_at=asked,
                    last_message_at=answered,
                    first_response_at=answered,
                    first_response_minutes=int((answered - asked).total_seconds() // 60),
                ),
                messages,
            )
        )
    return result


# What patients may book online: (code, minutes, modality, established, new, ages, cancel
# hours, months until it is due again).
_TYPES = (
    ("annual_physical", 30, "in_person", True, True, (18, 130), 24, 12),
    ("well_child", 30, "in_person", True, True, (0, 17), 24, 12),
    ("follow_up", 20, "in_person", True, False, (0, 130), 24, 0),
    ("sick_visit", 20, "in_person", True, True, (0, 130), 2, 0),
    ("lab_visit", 15, "in_person", True, False, (0, 130), 2, 0),
    ("telehealth", 20, "video", True, False, (18, 130), 2, 0),
)


async def _seed_scheduling(built: _Built, patients: list[tuple[int, str, date]]) -> None:
    """Appointment types, each clinician's weekly hours (check-ups in the morning, follow-ups
    and sick visits after lunch, Monday to Friday), four weeks of slots, and what is due:
    Maria's follow-up with Dr. Ruiz, James's A1c recheck. David has a visit within a day,
    too late to cancel online."""
    type_ids = dict(
        zip(
            [entry[0] for entry in _TYPES],
            await _insert(
                AppointmentType,
                [
                    AppointmentType(
                        code=code,
                        duration_minutes=minutes,
                        modality=modality,
                        established_patients=established,
                        new_patients=new,
                        min_age=ages[0],
                        max_age=ages[1],
                        cancel_hours=cancel,
                        recall_months=months,
                    )
                    for code, minutes, modality, established, new, ages, cancel, months in _TYPES
                ],
            ),
            strict=True,
        )
    )
    location_of = {
        cid: built.location_ids[0 if i < 3 else 1] for i, cid in enumerate(built.clinician_ids)
    }
    templates = []
    for clinician in built.clinician_ids:
        checkup = "well_child" if clinician in built.pediatric_ids else "annual_physical"
        for weekday in range(5):
            for code, start, end in (
                (checkup, 9 * 60, 11 * 60),
                ("follow_up", 13 * 60, 14 * 60),
                ("sick_visit", 14 * 60, 16 * 60),
            ):
                templates.append(
                    ScheduleTemplate(
                        clinician=clinician,
                        location=location_of[clinician],
                        appointment_type=type_ids[code],
                        weekday=weekday,
                        start_minute=start,
                        end_minute=end,
                    )
                )
    await _insert(ScheduleTemplate, templates)
    await slots_generate(days=28)
    maria, james, david = patients[0][0], patients[5][0], patients[3][0]
    today = utcnow().date()
    await _insert(
        CareRecall,
        [
            CareRecall(
                patient=maria,
                appointment_type=type_ids["follow_up"],
                clinician=built.clinician_ids[0],
                reason="follow_up",
                due_on=today + timedelta(days=14),
            ),
            CareRecall(
                patient=james,
                appointment_type=type_ids["lab_visit"],
                clinician=None,
                reason="recheck",
                due_on=today + timedelta(days=7),
            ),
        ],
    )
    soon = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=20)
    await _insert(
        Appointment,
        [
            Appointment(
                patient=david,
                clinician=built.adult_ids[2],
                location=location_of[built.adult_ids[2]],
                starts_at=soon,
                ends_at=soon + timedelta(minutes=20),
                visit_type="follow_up",
                status="booked",
                channel="phone",
                created_at=soon - timedelta(days=10),
            )
        ],
    )


# The message desk ---------------------------------------------------------------------------

_REPLY_TEMPLATES = (
    (
        "",
        "Thanks, we have your message",
        "Hi {first_name}, thank you for your message. {staff_name} from {clinic_name} is looking "
        "into it and will write back today. If it cannot wait, call us at {clinic_phone}.",
    ),
    (
        "question",
        "Please book a visit",
        "Hi {first_name}, this is best looked at in person. Please book a visit in the portal "
        "or call us at {clinic_phone}.",
    ),
    (
        "refill",
        "Refill sent",
        "Hi {first_name}, your refill was sent to your pharmacy. It is usually ready within a day.",
    ),
    (
        "appointment",
        "Appointment changed",
        "Hi {first_name}, we changed your appointment as you asked. You can see it under Visits.",
    ),
    (
        "billing",
        "Looking into your bill",
        "Hi {first_name}, we are looking into your bill and will write back within two business "
        "days. Questions in the meantime? Call {clinic_phone}.",
    ),
)


def _observed(day: date) -> date:
    """A holiday on a weekend is taken on the Friday before or the Monday after."""
    return (
        day - timedelta(days=1) if day.weekday() == 5 else day + timedelta(days=day.weekday() == 6)
    )


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def clinic_holidays(year: int) -> list[tuple[date, str]]:
    """The days the demo clinic is closed in a year (US federal holidays it keeps)."""
    return [
        (_observed(date(year, 1, 1)), "New Year's Day"),
        (_last_weekday(year, 5, 0), "Memorial Day"),
        (_observed(date(year, 7, 4)), "Independence Day"),
        (_nth_weekday(year, 9, 0, 1), "Labor Day"),
        (_nth_weekday(year, 11, 3, 4), "Thanksgiving Day"),
        (_observed(date(year, 12, 25)), "Christmas Day"),
    ]


# Conversations waiting for the clinic: (topic, subject, text, hours before the last close
# it came in; negative: after it, overnight). A refill names a medicine and a pharmacy.
_WAITING = (
    ("question", "Cough for a week", "I have had a cough for a week. Should I come in?", 30),
    ("question", "Rash on my arm", "A red rash came up on my arm last night. It itches.", -4),
    ("appointment", "Move my visit", "Can I move my visit next week to the afternoon?", -14),
    ("billing", "Question about my bill", "Why did I get a second bill for my last visit?", 3),
    ("refill", "Refill request", "", 2),
)


async def _seed_message_desk(
    rng: random.Random, built: _Built, patients: list[tuple[int, str, date]], today: date
) -> None:
    """Clinic hours, holidays and reply templates, and a queue with work in it: overdue and
    overnight messages, a refill for Dr. Ruiz, and David writing for his father."""
    await ClinicHours.insert(
        *(
            ClinicHours(weekday=weekday, opens=opens, closes=closes)
            for weekday, (opens, closes) in DEFAULT_HOURS.items()
        )
    )
    holidays = [
        ClinicHoliday(day=day, name=name)
        for year in (today.year - 1, today.year, today.year + 1)
        for day, name in clinic_holidays(year)
    ]
    await ClinicHoliday.insert(*holidays)
    await ReplyTemplate.insert(
        *(
            ReplyTemplate(topic=topic, title=title, body=body)
            for topic, title, body in _REPLY_TEMPLATES
        )
    )
    calendar = BusinessCalendar(
        zone=CLINIC_ZONE, hours=DEFAULT_HOURS, holidays=frozenset(row.day for row in holidays)
    )
    now = datetime.now(UTC)
    last_close = (
        previous_close(calendar, now) if now.astimezone(CLINIC_ZONE).date() == today else now
    )
    rows = await Patient.select(Patient.id, Patient.primary_clinician, Patient.mrn).where(
        Patient.id.is_in([pid for pid, _, _ in patients])
    )
    adults = [
        row
        for row in rows
        if row["mrn"] > "RFH-100010" and row["primary_clinician"] in built.adult_ids
    ]
    location_of = {
        cid: built.location_ids[0 if i < 3 else 1] for i, cid in enumerate(built.clinician_ids)
    }
    waiting: list[tuple[Conversation, Message, str]] = []
    for topic, subject, text, hours in _WAITING:
        if topic == "refill":
            # Dr. Ruiz prescribes: the refill is in her own list.
            candidates = [
                row for row in adults if row["primary_clinician"] == built.clinician_ids[0]
            ]
        else:
            candidates = adults
        patient = rng.choice(candidates)
        received = last_close - timedelta(hours=hours)
        due = deadlines(calendar, topic, received)
        waiting.append(
            (
                Conversation(
                    patient=patient["id"],
                    subject=subject,
                    topic=topic,
                    pool=TOPIC_POOLS[topic],
                    location=location_of[patient["primary_clinician"]],
                    prescriber=patient["primary_clinician"] if topic == "refill" else None,
                    created_at=received,
                    last_message_at=received,
                    waiting_since=received,
                    due_at=due.due_at,
                    warn_at=due.warn_at,
                ),
                Message(sender="patient", body=text, sent_at=received),
                topic,
            )
        )
    # David writes for his father, as himself.
    walter = (
        await Patient.select(Patient.id, Patient.primary_clinician)
        .where(Patient.mrn == "RFH-100005")
        .first()
    )
    david = await Account.select(Account.id).where(Account.display_name == "David Chen").first()
    if walter is not None and david is not None:
        received = last_close - timedelta(hours=1)
        due = deadlines(calendar, "question", received)
        waiting.append(
            (
                Conversation(
                    patient=walter["id"],
                    subject="Dizzy when standing up",
                    topic="question",
                    pool=TOPIC_POOLS["question"],
                    location=location_of.get(walter["primary_clinician"]),
                    created_at=received,
                    last_message_at=received,
                    waiting_since=received,
                    due_at=due.due_at,
                    warn_at=due.warn_at,
                ),
                Message(
                    sender="patient",
                    body="Dad has been dizzy when he stands up. Should we change his blood "
                    "pressure medicine?",
                    sent_at=received,
                    author_account=david["id"],
                    author_name="David Chen",
                    on_behalf=True,
                    author_relationship="child",
                ),
                "question",
            )
        )
    ids = await _insert(Conversation, [conversation for conversation, _, _ in waiting])
    for conversation_id, (conversation, message, topic) in zip(ids, waiting, strict=True):
        message.conversation = conversation_id
        await Message.insert(message)
        if topic == "refill":
            await RefillRequest.insert(
                RefillRequest(
                    conversation=conversation_id,
                    patient=conversation.patient,
                    medication="Lisinopril 10 mg tablet",
                    pharmacy="Riverside Pharmacy, 200 River Street",
                )
            )


async def demo_phones() -> list[tuple[str, str]]:
    """The demo personas' first names and phones, for the console's stand-in phone."""
    rows = await Patient.select(Patient.given_name, Patient.phone).where(
        Patient.mrn.is_in([persona.mrn for persona in PERSONAS])
    )
    return [(row["given_name"], row["phone"]) for row in rows if row["phone"]]
