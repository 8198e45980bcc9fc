"""The health record beyond results: FHIR MedicationRequest, AllergyIntolerance, Immunization,
Condition, Encounter (a visit summary) and DocumentReference (its PDF), and where each
imported resource came from (FhirSource), so a second import changes nothing.

Every row belongs to one patient and may be marked confidential: such an item is the
patient's own and never shown to a proxy (docs/security.md), like a confidential result.
"""

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Patient


class Medication(Table):
    """FHIR MedicationRequest (or MedicationStatement): a medicine the patient takes or took."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    name = Varchar(length=200)
    # RxNorm code where known.
    code = Varchar(length=40, default="")
    # How to take it, in plain words ("1 tablet by mouth twice a day").
    instructions = Text(default="")
    prescriber = Varchar(length=200, default="")
    prescribed_at = Timestamptz(null=True, default=None)
    last_filled_at = Timestamptz(null=True, default=None)
    refills_left = Integer(null=True, default=None)
    # FHIR MedicationRequest.status: active | stopped | completed | on-hold | cancelled ...
    status = Varchar(length=20, default="active")
    confidential = Boolean(default=False)


class Allergy(Table):
    """FHIR AllergyIntolerance."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    substance = Varchar(length=200)
    code = Varchar(length=40, default="")
    reaction = Varchar(length=200, default="")
    # mild | moderate | severe ("" when not recorded)
    severity = Varchar(length=10, default="")
    # active | inactive | resolved
    status = Varchar(length=20, default="active")
    recorded_at = Timestamptz(null=True, default=None)
    confidential = Boolean(default=False)


class Immunization(Table):
    """FHIR Immunization: a vaccine given."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    vaccine = Varchar(length=200)
    # CVX code where known.
    code = Varchar(length=20, default="")
    occurred_at = Timestamptz()
    lot_number = Varchar(length=40, default="")
    # completed | entered-in-error | not-done
    status = Varchar(length=20, default="completed")
    confidential = Boolean(default=False)


class Problem(Table, tablename="problem"):
    """FHIR Condition on the problem list."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    # The clinical name, and a plain-language one where we have it.
    name = Varchar(length=200)
    plain_name = Varchar(length=200, default="")
    # SNOMED CT or ICD-10 code where known.
    code = Varchar(length=40, default="")
    # FHIR clinicalStatus: active | recurrence | relapse | inactive | remission | resolved
    status = Varchar(length=20, default="active")
    onset_at = Timestamptz(null=True, default=None)
    abated_at = Timestamptz(null=True, default=None)
    confidential = Boolean(default=False)


class VisitSummary(Table, tablename="visit_summary"):
    """FHIR Encounter: a visit that happened, with its after-visit notes."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    # What kind of visit ("General examination", "Urgent care").
    kind = Varchar(length=200, default="")
    reason = Varchar(length=200, default="")
    clinician = Varchar(length=200, default="")
    place = Varchar(length=200, default="")
    started_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    notes = Text(default="")
    confidential = Boolean(default=False)


class RecordDocument(Table, tablename="record_document"):
    """FHIR DocumentReference: a PDF kept under the data directory (never the web root),
    named by a random key and served only through the patient context."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    visit = ForeignKey(
        references=VisitSummary, null=True, default=None, on_delete=OnDelete.set_null
    )
    title = Varchar(length=200)
    filename = Varchar(length=200)
    media_type = Varchar(length=60, default="application/pdf")
    storage_key = Varchar(length=80, unique=True)
    size = Integer(default=0)
    written_at = Timestamptz()
    confidential = Boolean(default=False)


class FhirSource(Table, tablename="fhir_source"):
    """Where an imported row came from: one row per source system + resource id, with a hash
    of what was imported, so an unchanged resource is seen as such and an update replaces."""

    id: Serial
    # "<source system>|<ResourceType>/<id>"
    source_key = Varchar(length=400, unique=True, index=True)
    resource_type = Varchar(length=40)
    patient = ForeignKey(
        references=Patient, null=True, default=None, on_delete=OnDelete.cascade, index=True
    )
    # The row it became, in the table for its type (0 for reference data kept by name only).
    local_id = Integer(default=0)
    content_hash = Varchar(length=64)
    imported_at = created_at_column()
