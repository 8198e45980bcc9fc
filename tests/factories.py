"""Test data: small, explicit rows, each with unique values so tests never collide."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import ExifTags, Image

from app.access import Actor, PatientContext, StaffActor, patient_context_resolve
from app.notices.messages import MESSAGE_REPLY
from app.notices.words import Say, Wording
from app.services.messages.attachments import Prepared, attachment_store
from app.services.sessions import session_start
from app.tables import (
    AccessGrant,
    Account,
    Appointment,
    BillingAccount,
    BillingMember,
    Clinician,
    Conversation,
    LabObservation,
    LabReport,
    LedgerEntry,
    Location,
    Message,
    MessageAttachment,
    Organization,
    OutboxMessage,
    Patient,
    PushSubscription,
    RefillRequest,
    ReplyTemplate,
    StaffUser,
    Statement,
)

_counter = itertools.count(1)


def new_message(_: Say) -> Wording:
    """The notice of a reply from the care team, to test delivery in the messages area."""
    return MESSAGE_REPLY.words(_)


def years_ago(years: int, days: int = 30) -> date:
    """A birth date that makes someone `years` old (and `days` past their birthday) today."""
    anchor = date.today() - timedelta(days=days)
    return anchor.replace(year=anchor.year - years)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter):06d}"


def phone_number() -> str:
    """A phone no other test uses, that the clinic may text (a valid United States number)."""
    n = next(_counter)
    return f"+1202{2 + n // 1_000_000 % 8}{n % 1_000_000:06d}"


def email_address(name: str = "p") -> str:
    return f"{unique(name)}@mail.test"


def own_address() -> str:
    """An IP address no other test uses: attempts are counted per address in the database,
    for the whole run."""
    n = next(_counter)
    return f"10.77.{n // 250 % 250}.{n % 250 + 1}"


async def make_location(*, code: str | None = None, name: str = "Test Location") -> Location:
    """A clinic location (of an organization of its own), e.g. for a poster to join from."""
    org = Organization(name=unique("Clinic "), phone="(555) 000-0000")
    await Organization.insert(org)
    location = Location(
        organization=org.id,
        code=code or unique("L"),
        name=name,
        address_line="1 Test Street",
        city="Springfield",
        state="MA",
        postal_code="01103",
        phone="(555) 000-0001",
    )
    await Location.insert(location)
    return location


async def make_clinician(location: Location | None = None) -> int:
    location = location or await make_location()
    clinician = Clinician(
        prefix="Dr.",
        given_name="Test",
        family_name=unique("Doc"),
        specialty="Family medicine",
        location=location.id,
        npi=None,  # unique when given; the column's default is not NULL
    )
    await Clinician.insert(clinician)
    return clinician.id


async def make_patient(
    *, given: str = "Pat", birth: date | None = None, sex: str = "female"
) -> Patient:
    patient = Patient(
        mrn=unique("T-"),
        given_name=given,
        family_name=unique("Family"),
        birth_date=birth or date(1980, 5, 17),
        sex=sex,
    )
    await Patient.insert(patient)
    return patient


async def make_account(name: str = "Test Person", *, locale: str | None = None) -> Account:
    account = Account(display_name=name, locale=locale)
    await Account.insert(account)
    return account


async def grant(
    account: Account,
    patient: Patient,
    *,
    kind: str = "self",
    scope: str = "full",
    relationship: str | None = None,
    expires_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> AccessGrant:
    row = AccessGrant(
        account=account.id,
        patient=patient.id,
        kind=kind,
        scope=scope,
        relationship=relationship,
        starts_at=datetime.now(UTC) - timedelta(days=1),
        expires_at=expires_at,
        revoked_at=revoked_at,
    )
    await AccessGrant.insert(row)
    return row


def actor_for(
    account: Account, *, acting_patient_id: int | None = None, session_id: int = 0
) -> Actor:
    return Actor(
        account_id=account.id,
        account_public_id=account.public_id,
        display_name=account.display_name,
        locale=account.locale,
        session_id=session_id,
        acting_patient_id=acting_patient_id,
        ip="127.0.0.1",
        user_agent="pytest",
    )


@dataclass
class Person:
    """An account with its own record: the usual signed-in patient."""

    account: Account
    patient: Patient

    async def context(self, acting_patient_id: int | None = None) -> PatientContext:
        context = await patient_context_resolve(
            actor_for(self.account, acting_patient_id=acting_patient_id)
        )
        assert context is not None
        return context


async def make_person(
    given: str = "Pat", birth: date | None = None, *, locale: str | None = None
) -> Person:
    patient = await make_patient(given=given, birth=birth)
    account = await make_account(f"{given} {patient.family_name}", locale=locale)
    await grant(account, patient)
    return Person(account=account, patient=patient)


async def make_reachable_person(
    given: str = "Pat", birth: date | None = None, *, locale: str | None = None
) -> tuple[Person, str, str]:
    """A person with a phone and an email on their record: (person, phone, email)."""
    person = await make_person(given, birth, locale=locale)
    phone, email = phone_number(), email_address(given.lower())
    await with_contacts(person.patient, phone=phone, email=email)
    return person, phone, email


async def make_visit(
    patient: Patient,
    *,
    starts_at: datetime,
    confidential: bool = False,
    visit_type: str = "follow_up",
) -> Appointment:
    """A booked half-hour visit with a clinician at their location."""
    location = await make_location()
    visit = Appointment(
        patient=patient.id,
        clinician=await make_clinician(location),
        location=location.id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        visit_type=visit_type,
        confidential=confidential,
    )
    await Appointment.insert(visit)
    return visit


async def make_report(
    patient: Patient,
    *,
    name: str = "Basic metabolic panel",
    days_ago: int = 3,
    released: bool = True,
    confidential: bool = False,
    value: float = 105.0,
) -> LabReport:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    report = LabReport(
        patient=patient.id,
        loinc="51990-0",
        name=name,
        effective_at=when,
        issued_at=when + timedelta(hours=4),
        released_at=when + timedelta(hours=4) if released else None,
        confidential=confidential,
    )
    await LabReport.insert(report)
    await LabObservation.insert(
        LabObservation(
            report=report.id,
            patient=patient.id,
            loinc="2345-7",
            name="Glucose",
            unit="mg/dL",
            value_number=value,
            reference_low=70.0,
            reference_high=99.0,
            interpretation="H" if value > 99 else "N",
            effective_at=when,
        )
    )
    return report


async def with_contacts(
    patient: Patient,
    *,
    phone: str | None = None,
    email: str | None = None,
    phone_is_own: bool = False,
    email_is_own: bool = False,
) -> Patient:
    """The record with this phone and email (a teenager's marked as their own, or not)."""
    await Patient.update(
        {
            Patient.phone: phone,
            Patient.email: email,
            Patient.phone_is_own: phone_is_own,
            Patient.email_is_own: email_is_own,
        }
    ).where(Patient.id == patient.id)
    patient.phone, patient.email = phone, email
    patient.phone_is_own, patient.email_is_own = phone_is_own, email_is_own
    return patient


async def start_session(
    account_id: int,
    acting_patient_id: int | None = None,
    *,
    lifetime: timedelta = timedelta(hours=1),
    ip: str = "127.0.0.1",
    user_agent: str = "pytest",
    reason: str = "test",
    passkey_id: int | None = None,
) -> str:
    """A signed-in session for the account, as a sign-in makes one; its token."""
    return await session_start(
        account_id=account_id,
        acting_patient_id=acting_patient_id,
        lifetime=lifetime,
        ip=ip,
        user_agent=user_agent,
        reason=reason,
        passkey_id=passkey_id,
    )


# A subscription as a browser sends it: a push service we deliver to, and its keys.
PUSH_SERVICE = "https://fcm.googleapis.com/fcm/send/"
PUSH_KEYS = {
    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
    "-Ts1XbjhazAkj7I99e8QcYP7DkM",
    "auth": "tBHItJI5svbpez7KI4CCXg",
}


async def make_push_device(account_id: int) -> PushSubscription:
    """A device of the account's that takes pushes."""
    device = PushSubscription(
        account=account_id, endpoint=f"{PUSH_SERVICE}{unique('device')}", **PUSH_KEYS
    )
    await PushSubscription.insert(device)
    return device


async def make_dead_text(
    *, recipient: str, body: str = "b", attempts: int = 0, last_error: str = ""
) -> OutboxMessage:
    """A text the outbox gave up on, its text still kept."""
    message = OutboxMessage(
        channel="sms",
        recipient=recipient,
        body=body,
        idempotency_key=unique("k"),
        status="dead",
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=datetime.now(UTC),
    )
    await OutboxMessage.insert(message)
    return message


async def staff_sign_up_path(base_url: str, given: str = "Ada", family: str = "Admin") -> str:
    """A new administrator's one-time sign-up link, as a path on the portal at `base_url`."""
    from app.services.console.staff_auth import staff_create

    link = await staff_create(
        email=f"{unique('admin')}@clinic.test",
        given_name=given,
        family_name=family,
        role="admin",
        base_url=base_url,
    )
    return link.link.removeprefix(base_url)


async def sent_to(recipient: str, *, kind: str | None = None) -> str:
    """The newest text or email queued for `recipient` (of this kind, if given)."""
    query = OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == recipient)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    row = await query.order_by(OutboxMessage.id, ascending=False).first()
    assert row is not None, f"nothing was sent to {recipient}"
    return str(row["body"])


async def code_sent_to(recipient: str, *, kind: str | None = None) -> str:
    """The six digits in the newest message to `recipient` (of this kind, if given)."""
    found = re.search(r"\b(\d{6})\b", await sent_to(recipient, kind=kind))
    assert found is not None, f"no code in the newest message to {recipient}"
    return found.group(1)


async def link_sent_to(recipient: str, path: str) -> str:
    """The portal path (starting with `path`, e.g. "/care/") in the newest message to
    `recipient`."""
    found = re.search(rf"({re.escape(path)}[A-Za-z0-9_-]+)", await sent_to(recipient))
    assert found is not None, f"no {path} link in the newest message to {recipient}"
    return found.group(1)


# Scheduling ---------------------------------------------------------------------------------

# The demo clinic's rules for each kind of visit (tests and the demo share the rows by code):
# minutes, established, new, ages, cancel hours, months until due again.
VISIT_TYPES: dict[str, tuple[int, bool, bool, tuple[int, int], int, int]] = {
    "annual_physical": (30, True, True, (18, 130), 24, 12),
    "well_child": (30, True, True, (0, 17), 24, 12),
    "follow_up": (20, True, False, (0, 130), 24, 0),
    "sick_visit": (20, True, True, (0, 130), 2, 0),
    "lab_visit": (15, True, False, (0, 130), 2, 0),
}


async def appointment_type(code: str) -> int:
    """The type's id, made with the demo clinic's rules if it does not exist yet."""
    from app.tables import AppointmentType

    found = await AppointmentType.select(AppointmentType.id).where(AppointmentType.code == code)
    if found:
        return int(found[0]["id"])
    minutes, established, new, ages, cancel, months = VISIT_TYPES[code]
    row = AppointmentType(
        code=code,
        duration_minutes=minutes,
        established_patients=established,
        new_patients=new,
        min_age=ages[0],
        max_age=ages[1],
        cancel_hours=cancel,
        recall_months=months,
    )
    await AppointmentType.insert(row)
    return int(row.id)


@dataclass
class Schedule:
    """A clinician of their own (their own location), and the slots made for them."""

    clinician_id: int
    location_id: int
    slots: list[str]


async def make_schedule(
    starts: list[datetime], *, code: str = "sick_visit", minutes: int = 20
) -> Schedule:
    """Free slots of a kind of visit at these times, with a new clinician."""
    from app.tables import Slot

    type_id = await appointment_type(code)
    clinician_id = await make_clinician()
    row = await Clinician.select(Clinician.location).where(Clinician.id == clinician_id).first()
    assert row is not None
    slots = [
        Slot(
            clinician=clinician_id,
            location=row["location"],
            appointment_type=type_id,
            starts_at=start,
            ends_at=start + timedelta(minutes=minutes),
        )
        for start in starts
    ]
    if slots:
        await Slot.insert(*slots)
    return Schedule(clinician_id, row["location"], [str(slot.public_id) for slot in slots])


def hours_from_now(*hours: float) -> list[datetime]:
    """Whole minutes, so times compare equal after a round trip through the database."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return [now + timedelta(hours=hour) for hour in hours]


async def make_staff(role: str = "nurse", *, clinician: int | None = None) -> StaffUser:
    staff = StaffUser(
        given_name="Sam",
        family_name=unique("Staff"),
        email=f"{unique('s')}@clinic.test",
        role=role,
        clinician=clinician,
    )
    await StaffUser.insert(staff)
    return staff


def staff_actor_for(staff: StaffUser) -> StaffActor:
    return StaffActor(
        staff_id=staff.id,
        public_id=staff.public_id,
        given_name=staff.given_name,
        family_name=staff.family_name,
        role=staff.role,
        session_id=0,
        ip="127.0.0.1",
        user_agent="pytest",
    )


async def make_thread(
    patient: Patient,
    *,
    topic: str = "question",
    pool: str = "clinical",
    confidential: bool = False,
    body: str = "Hello, a question.",
    waiting: bool = True,
) -> Conversation:
    """A conversation the patient started (waiting on the clinic unless `waiting` is off)."""
    now = datetime.now(UTC)
    conversation = Conversation(
        patient=patient.id,
        subject="A question",
        topic=topic,
        pool=pool,
        confidential=confidential,
        created_at=now,
        last_message_at=now,
        waiting_since=now if waiting else None,
        due_at=now + timedelta(hours=4) if waiting else None,
        warn_at=now + timedelta(hours=3) if waiting else None,
    )
    await Conversation.insert(conversation)
    await Message.insert(
        Message(conversation=conversation.id, sender="patient", body=body, sent_at=now)
    )
    return conversation


async def make_attachment(thread_public_id: str) -> MessageAttachment:
    """A PDF sent with the conversation's first message, stored as sending stores it."""
    thread = await Conversation.select(Conversation.id).where(
        Conversation.public_id == thread_public_id
    )
    message = await Message.select(Message.id).where(Message.conversation == thread[0]["id"])
    prepared = Prepared("application/pdf", "scan.pdf", PDF_BYTES)
    row = MessageAttachment(
        message=message[0]["id"],
        conversation=thread[0]["id"],
        media_type=prepared.media_type,
        filename=prepared.filename,
        size_bytes=len(prepared.data),
        storage_key=await attachment_store(prepared),
        sha256=prepared.sha256,
    )
    await MessageAttachment.insert(row)
    return row


async def make_refill(
    patient: Patient, medication: str = "Metformin"
) -> tuple[Conversation, RefillRequest]:
    """A refill request waiting in the refills pool."""
    thread = await make_thread(patient, topic="refill", pool="refills")
    refill = RefillRequest(
        conversation=thread.id, patient=patient.id, medication=medication, pharmacy="CVS"
    )
    await RefillRequest.insert(refill)
    return thread, refill


async def make_reply_template(topic: str = "") -> ReplyTemplate:
    row = ReplyTemplate(title=unique("Template "), body="Hi {first_name}.", topic=topic)
    await ReplyTemplate.insert(row)
    return row


# The first bytes of a Windows program: what a renamed "photo.jpg" can really be.
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def photo_with_location(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG as a phone writes it: with EXIF GPS coordinates and the camera's name."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = image.getexif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (40.0, 26.0, 46.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (79.0, 58.0, 56.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@dataclass(frozen=True)
class RecordItems:
    """One of each kind of health-record item on a record (public ids)."""

    medication: str
    allergy: str
    immunization: str
    problem: str
    visit: str
    document: str


async def make_record(
    patient: Patient, *, confidential: bool = False, label: str = ""
) -> RecordItems:
    """A medication, an allergy, an immunization, a problem and a visit summary with a PDF,
    all marked `confidential` or not; names end with `label` so tests can tell them apart."""
    from app.services.record.documents import document_filename, document_store, simple_pdf
    from app.tables import (
        Allergy,
        Immunization,
        Medication,
        Problem,
        RecordDocument,
        VisitSummary,
    )

    when = datetime.now(UTC) - timedelta(days=40)
    medication = Medication(
        patient=patient.id,
        name=f"Lisinopril 10 mg{label}",
        code="314076",
        instructions="1 tablet by mouth once a day",
        prescriber="Dr. Ana Ruiz",
        prescribed_at=when,
        last_filled_at=when + timedelta(days=10),
        refills_left=3,
        status="active",
        confidential=confidential,
    )
    allergy = Allergy(
        patient=patient.id,
        substance=f"Penicillin{label}",
        reaction="Hives",
        severity="moderate",
        recorded_at=when,
        confidential=confidential,
    )
    shot = Immunization(
        patient=patient.id,
        vaccine=f"Influenza, seasonal{label}",
        code="140",
        occurred_at=when,
        lot_number="FL2291",
        confidential=confidential,
    )
    problem = Problem(
        patient=patient.id,
        name=f"Essential hypertension{label}",
        plain_name=f"High blood pressure{label}",
        code="59621000",
        onset_at=when,
        confidential=confidential,
    )
    visit = VisitSummary(
        patient=patient.id,
        kind="Office visit",
        reason=f"Blood pressure check{label}",
        clinician="Dr. Ana Ruiz",
        place="Riverside Family Health",
        started_at=when,
        ended_at=when + timedelta(minutes=20),
        notes="Keep taking your medicine. Walk 30 minutes a day.",
        confidential=confidential,
    )
    for row in (medication, allergy, shot, problem, visit):
        await type(row).insert(row)
    data = simple_pdf("After-visit summary", ["Blood pressure 128/82.", "Come back in 3 months."])
    title = f"After-visit summary{label}"
    document = RecordDocument(
        patient=patient.id,
        visit=visit.id,
        title=title,
        filename=document_filename(title),
        storage_key=await document_store(data),
        size=len(data),
        written_at=when,
        confidential=confidential,
    )
    await RecordDocument.insert(document)
    return RecordItems(
        medication=str(medication.public_id),
        allergy=str(allergy.public_id),
        immunization=str(shot.public_id),
        problem=str(problem.public_id),
        visit=str(visit.public_id),
        document=str(document.public_id),
    )


def synthea_files() -> list[Path]:
    """The 13 Synthea R4 bundles kept beside the repository (shared/data/fhir-synthea-r4),
    or none when that folder is absent (tests that need them skip, saying so)."""
    for folder in (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "fhir-synthea-r4",
        Path("/work/shared/data/fhir-synthea-r4"),
    ):
        if folder.is_dir():
            return sorted(folder.glob("*.json"))
    return []


@dataclass
class Bill:
    """A billing account with one statement: a visit charged, insurance's part paid, and
    the rest owed because of the plan's deductible."""

    account: BillingAccount
    statement: Statement
    owed_cents: int


async def make_bill(
    patient: Patient,
    *,
    guarantor: Patient | None = None,
    charge_cents: int = 18_000,
    insurance_cents: int = 10_000,
    confidential: bool = False,
    account: BillingAccount | None = None,
) -> Bill:
    """A bill for a visit of `patient`'s, paid for by `guarantor` (else the patient)."""
    payer = guarantor or patient
    if account is None:
        account = BillingAccount(
            guarantor=payer.id, guarantor_name=f"{payer.given_name} {payer.family_name}"
        )
        await BillingAccount.insert(account)
        await BillingMember.insert(BillingMember(account=account.id, patient=payer.id))
    if payer.id != patient.id and not await BillingMember.exists().where(
        BillingMember.patient == patient.id
    ):
        await BillingMember.insert(BillingMember(account=account.id, patient=patient.id))
    today = datetime.now(UTC).date()
    statement = Statement(
        account=account.id,
        code=unique("B").replace("-", "")[:12].upper(),
        issued_on=today,
        due_on=today + timedelta(days=30),
    )
    await Statement.insert(statement)
    line = {
        "account": account.id,
        "patient": patient.id,
        "statement": statement.id,
        "confidential": confidential,
        "service": "office_visit",
        "service_date": today - timedelta(days=10),
    }
    await LedgerEntry.insert(
        LedgerEntry(kind="charge", amount_cents=charge_cents, reason="deductible", **line),
        LedgerEntry(kind="insurance", amount_cents=insurance_cents, **line),
    )
    return Bill(account=account, statement=statement, owed_cents=charge_cents - insurance_cents)
