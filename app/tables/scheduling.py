"""Visits and what they are booked into: FHIR Appointment, Slot and Schedule.

The inventory: appointment types (who may book them online, how long they take, until when
they can be cancelled online), clinicians' weekly templates that generate slots in the
location's time zone, and blocked times. A slot is booked at most once: a partial unique index
on `appointment (slot) WHERE status = 'booked'` (see migrations/) refuses a second booking,
whatever the code above it does, on SQLite and PostgreSQL alike.
"""

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.clinic import Clinician, Location
from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient


class AppointmentType(Table):
    """What can be booked (FHIR Appointment.appointmentType with HealthcareService rules)."""

    id: Serial
    public_id = public_id_column()
    # annual_physical | follow_up | sick_visit | well_child | lab_visit | telehealth
    code = Varchar(length=30, unique=True)
    duration_minutes = Integer(default=30)
    # in_person | video
    modality = Varchar(length=10, default="in_person")
    # Who may book it online: patients seen here before, new ones, and an age range.
    established_patients = Boolean(default=True)
    new_patients = Boolean(default=False)
    min_age = Integer(default=0)
    max_age = Integer(default=130)
    # Cancelling online closes this many hours before the start; then the patient calls.
    cancel_hours = Integer(default=24)
    # Offered on home as "due" this many months after the last one (0: never suggested).
    recall_months = Integer(default=0)
    self_bookable = Boolean(default=True)


class ScheduleTemplate(Table):
    """A clinician's weekly hours for a type at a location, in the location's local time."""

    id: Serial
    public_id = public_id_column()
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict, index=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict)
    appointment_type = ForeignKey(references=AppointmentType, on_delete=OnDelete.restrict)
    weekday = Integer()  # Monday 0 ... Sunday 6
    start_minute = Integer()  # minutes after local midnight
    end_minute = Integer()
    active = Boolean(default=True)
    created_at = created_at_column()


class ScheduleBlock(Table):
    """Time nobody can book: a holiday for a location, or a clinician's time away."""

    id: Serial
    public_id = public_id_column()
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict, null=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    reason = Varchar(length=100, default="")
    created_at = created_at_column()


class Slot(Table):
    """One bookable time (FHIR Slot). Free while no booked appointment holds it."""

    id: Serial
    public_id = public_id_column()
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict)
    appointment_type = ForeignKey(references=AppointmentType, on_delete=OnDelete.restrict)
    starts_at = Timestamptz(index=True)
    ends_at = Timestamptz()
    # A block covers it: never offered (a booked visit in it stays booked, and is listed).
    blocked = Boolean(default=False)
    created_at = created_at_column()


class Appointment(Table):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict)
    # The slot it holds; visits booked before slots existed (or by phone) have none.
    slot = ForeignKey(references=Slot, on_delete=OnDelete.restrict, null=True, index=True)
    starts_at = Timestamptz(index=True)
    ends_at = Timestamptz()
    # annual_physical | follow_up | sick_visit | well_child | lab_visit | telehealth
    visit_type = Varchar(length=30)
    # booked | fulfilled | cancelled | noshow (FHIR Appointment.status)
    status = Varchar(length=20, default="booked")
    # portal | staff | phone: where it was booked, for the "booked through the portal" figure
    channel = Varchar(length=10, default="staff")
    # Sexual, reproductive or mental health, or as the clinician flags: hidden from
    # guardians of adolescents (docs/security.md).
    confidential = Boolean(default=False)
    # When the day-before and the three-days-before reminders were queued (once each).
    reminded_at = Timestamptz(null=True, default=None)
    reminded_3d_at = Timestamptz(null=True, default=None)
    # The patient said they will come (from a reminder); the clinic's day view shows it.
    confirmed_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    # patient | clinic | rescheduled; and the patient's own words, if they gave a reason
    cancelled_by = Varchar(length=20, default="")
    cancel_reason = Varchar(length=40, default="")
    # The visit that took this one's place when it was moved to another time.
    replaced_by: ForeignKey["Appointment"] = ForeignKey(
        references="self", on_delete=OnDelete.set_null, null=True
    )
    created_at = created_at_column()


class CareRecall(Table):
    """A visit the care team wants booked (FHIR ServiceRequest): a follow-up a clinician
    asked for, or a recheck after a result. Home offers a real slot for it."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    appointment_type = ForeignKey(references=AppointmentType, on_delete=OnDelete.restrict)
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict, null=True)
    reason = Varchar(length=20, default="follow_up")  # follow_up | recheck
    due_on = Date()
    # The visit that answered it.
    appointment = ForeignKey(references=Appointment, on_delete=OnDelete.set_null, null=True)
    created_at = created_at_column()


class WaitlistEntry(Table):
    """ "Tell me if something earlier opens" on a booked visit (Fast Pass)."""

    id: Serial
    public_id = public_id_column()
    appointment = ForeignKey(references=Appointment, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict)
    account = ForeignKey(references=Account, on_delete=OnDelete.set_null, null=True)
    # waiting | done (an offer was accepted) | left
    status = Varchar(length=10, default="waiting")
    created_at = created_at_column()


class WaitlistOffer(Table):
    """A freed slot offered to one waitlisted visit. The link carries a random token kept only
    as a hash; the first offer accepted books the slot, the others are told it is gone."""

    id: Serial
    public_id = public_id_column()
    entry = ForeignKey(references=WaitlistEntry, on_delete=OnDelete.cascade, index=True)
    slot = ForeignKey(references=Slot, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True)
    # open | accepted | gone | expired
    status = Varchar(length=10, default="open")
    expires_at = Timestamptz()
    created_at = created_at_column()
