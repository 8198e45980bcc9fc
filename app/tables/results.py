"""Lab results: FHIR DiagnosticReport (a panel) and its Observations."""

from piccolo.columns import (
    Boolean,
    DoublePrecision,
    ForeignKey,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.clinic import Clinician
from app.tables.columns import public_id_column
from app.tables.people import Patient, StaffUser


class LabReport(Table):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    loinc = Varchar(length=20)
    name = Varchar(length=200)
    # registered | preliminary | final | amended
    status = Varchar(length=20, default="final")
    effective_at = Timestamptz()
    issued_at = Timestamptz()
    # None while held; results are released when final unless a hold applies.
    released_at = Timestamptz(null=True, default=None)
    # A held result is released by itself at this time, or earlier by a clinician.
    hold_until = Timestamptz(null=True, default=None)
    released_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    ordering_clinician = ForeignKey(
        references=Clinician, null=True, default=None, on_delete=OnDelete.set_null
    )
    clinician_comment = Text(null=True, default=None)
    confidential = Boolean(default=False)
    first_viewed_at = Timestamptz(null=True, default=None)


class LabObservation(Table):
    id: Serial
    public_id = public_id_column()
    report = ForeignKey(references=LabReport, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    loinc = Varchar(length=20, index=True)
    name = Varchar(length=200)
    value_number = DoublePrecision(null=True, default=None)
    value_text = Varchar(length=200, null=True, default=None)
    unit = Varchar(length=40, default="")
    reference_low = DoublePrecision(null=True, default=None)
    reference_high = DoublePrecision(null=True, default=None)
    # HL7 ObservationInterpretation: LL | L | N | H | HH (None when there is no range)
    interpretation = Varchar(length=4, null=True, default=None)
    effective_at = Timestamptz()
