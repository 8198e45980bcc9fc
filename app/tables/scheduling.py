"""Visits: FHIR Appointment."""

from piccolo.columns import Boolean, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.clinic import Clinician, Location
from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Patient


class Appointment(Table):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    clinician = ForeignKey(references=Clinician, on_delete=OnDelete.restrict)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict)
    starts_at = Timestamptz(index=True)
    ends_at = Timestamptz()
    # annual_physical | follow_up | sick_visit | well_child | lab_visit | telehealth
    visit_type = Varchar(length=30)
    # booked | fulfilled | cancelled | noshow (FHIR Appointment.status)
    status = Varchar(length=20, default="booked")
    # portal | staff | phone: for the "booked through the portal" figure
    booked_via = Varchar(length=10, default="staff")
    # Sexual, reproductive or mental health, or as the clinician flags: hidden from
    # guardians of adolescents (docs/security.md).
    confidential = Boolean(default=False)
    # When the day-before reminder was queued (once per visit).
    reminded_at = Timestamptz(null=True, default=None)
    created_at = created_at_column()
