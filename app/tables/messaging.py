"""Secure messages: a conversation with the care team, FHIR Communication per message.

The clinic's side lives on the same rows: which pool answers a conversation (from its
topic), who owns it, since when the clinic owes an answer and by when (a target counted in
business hours: `ClinicHours` and `ClinicHoliday`), and the response times once they happen.
Internal notes and attachments have tables of their own, so nothing the patient must not
see sits among the messages they read.
"""

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.clinic import Clinician, Location
from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient, StaffUser


class Conversation(Table):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    subject = Varchar(length=200)
    # question | refill | appointment | billing | other
    topic = Varchar(length=20, default="question")
    status = Varchar(length=10, default="open")  # open | closed
    # For the patient only: hidden from every caregiver (docs/security.md).
    confidential = Boolean(default=False)
    created_at = created_at_column()
    last_message_at = created_at_column()
    # The clinic's pool that answers it (from the topic): clinical | refills | front_desk |
    # billing; and the location whose hours its target counts in.
    pool = Varchar(length=20, default="clinical")
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.set_null)
    # A refill request goes to the prescriber: the patient's own clinician when known.
    prescriber = ForeignKey(
        references=Clinician, null=True, default=None, on_delete=OnDelete.set_null
    )
    assigned_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    assigned_at = Timestamptz(null=True, default=None)
    # The oldest patient message the clinic has not answered; None when nothing waits.
    waiting_since = Timestamptz(null=True, default=None, index=True)
    # The pool's target for that answer, in business hours, and when it is about to breach.
    due_at = Timestamptz(null=True, default=None)
    warn_at = Timestamptz(null=True, default=None)
    # Figures for the dashboard, recorded when they happen: wall clock and business minutes.
    first_response_at = Timestamptz(null=True, default=None)
    first_response_minutes = Integer(null=True, default=None)
    first_response_business_minutes = Integer(null=True, default=None)
    resolved_at = Timestamptz(null=True, default=None)
    resolution_minutes = Integer(null=True, default=None)
    resolution_business_minutes = Integer(null=True, default=None)
    # A clinician noted the conversation in the chart, with a short summary.
    documented_at = Timestamptz(null=True, default=None)
    documented_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    documented_note = Varchar(length=500, default="")
    # portal | sms: a conversation a patient started by texting the clinic's number.
    via = Varchar(length=10, default="portal")


class Message(Table):
    id: Serial
    public_id = public_id_column()
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    author_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    author_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    # patient (the patient or their caregiver wrote it) | clinic (the care team did)
    sender = Varchar(length=10)
    body = Text()
    sent_at = created_at_column()
    read_by_patient_at = Timestamptz(null=True, default=None)
    # Who wrote it, as they were named when they wrote it: a caregiver writes as themself,
    # on the patient's behalf, and the clinic sees who it was.
    author_name = Varchar(length=200, default="")
    on_behalf = Boolean(default=False)
    author_relationship = Varchar(length=20, null=True, default=None)


class MessageAttachment(Table):
    """A photo or PDF sent with a message, stored as a file outside the web root (its name
    a random key) and served only through the patient context or the clinic's queue."""

    id: Serial
    public_id = public_id_column()
    message = ForeignKey(references=Message, on_delete=OnDelete.cascade, index=True)
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    # What the content is (checked by its first bytes, never its name): image/jpeg |
    # image/png | application/pdf
    media_type = Varchar(length=40)
    filename = Varchar(length=120)
    size_bytes = Integer()
    storage_key = Varchar(length=64, unique=True)
    sha256 = Varchar(length=64)
    created_at = created_at_column()


class ConversationNote(Table):
    """An internal note between staff: never shown to the patient or a caregiver."""

    id: Serial
    public_id = public_id_column()
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    staff = ForeignKey(references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null)
    body = Text()
    created_at = created_at_column()


class RefillRequest(Table):
    """One medicine asked for in a refill conversation, and the prescriber's decision."""

    id: Serial
    public_id = public_id_column()
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    medication = Varchar(length=200)
    # The health record's medication, when the patient picked one from their list.
    medication_ref = Varchar(length=16, default="")
    pharmacy = Varchar(length=200, default="")
    status = Varchar(length=10, default="requested")  # requested | approved | denied
    reason = Varchar(length=500, default="")
    decided_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    decided_at = Timestamptz(null=True, default=None)
    created_at = created_at_column()


class ReplyTemplate(Table):
    """A reply the clinic often writes, with placeholders ({first_name}, {clinic_phone}...);
    administrators keep the list."""

    id: Serial
    public_id = public_id_column()
    title = Varchar(length=100)
    body = Text()
    # The topic it suits, or "" for any.
    topic = Varchar(length=20, default="")
    active = Boolean(default=True)
    created_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    updated_at = created_at_column()


class ClinicHours(Table):
    """When a location answers messages, per weekday (0 Monday .. 6 Sunday), in minutes
    after local midnight; rows without a location are the clinic's default. No rows at all:
    Monday to Friday, 8:00 to 17:00."""

    id: Serial
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.cascade)
    weekday = Integer()
    opens = Integer()
    closes = Integer()


class ClinicHoliday(Table):
    """A day a location (or, without one, the whole clinic) is closed."""

    id: Serial
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.cascade)
    day = Date()
    name = Varchar(length=100, default="")
