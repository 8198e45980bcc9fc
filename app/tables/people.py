"""Who is who (docs/security.md): patients are records, accounts sign in, grants join them."""

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


class Patient(Table):
    """FHIR Patient: a health record, not a login."""

    id: Serial
    public_id = public_id_column()
    # Wide enough for a record system's own ids (Synthea's are UUIDs).
    mrn = Varchar(length=64, unique=True)
    # The identifier system the MRN was imported with ("" until an import names one): an
    # MRN of another system is another numbering, never the same person.
    mrn_system = Varchar(length=200, default="")
    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    preferred_name = Varchar(length=100, null=True, default=None)
    birth_date = Date()
    # FHIR administrative gender: female | male | other | unknown
    sex = Varchar(length=10)
    phone = Varchar(length=40, null=True, default=None)
    email = Varchar(length=200, null=True, default=None)
    # Staff marked this phone or email as the patient's own (not a parent's): a teenager
    # may have their own account only through a contact so marked (docs/security.md).
    phone_is_own = Boolean(default=False)
    email_is_own = Boolean(default=False)
    preferred_language = Varchar(length=10, default="en")
    address_line = Varchar(length=200, default="")
    city = Varchar(length=100, default="")
    state = Varchar(length=40, default="")
    postal_code = Varchar(length=20, default="")
    primary_clinician = ForeignKey(references=Clinician, null=True, on_delete=OnDelete.set_null)
    deceased_at = Timestamptz(null=True, default=None)
    # Identifier in the record system this patient came from (a FHIR Patient.id).
    source_id = Varchar(length=80, null=True, default=None)
    created_at = created_at_column()


class Account(Table):
    """A person who signs in: a patient, a caregiver or both."""

    id: Serial
    public_id = public_id_column()
    display_name = Varchar(length=200)
    # The account's chosen language; None means "follow the browser".
    locale = Varchar(length=10, null=True, default=None)
    # A caregiver without a record of their own here: where sign-in codes and notices go.
    phone = Varchar(length=40, null=True, default=None)
    email = Varchar(length=200, null=True, default=None)
    # Notification choices as JSON {category: [channels]}; empty means the defaults.
    notify_prefs = Text(default="")
    # Quiet hours in minutes after midnight, clinic time: push and texts wait them out.
    quiet_start = Integer(null=True, default=None)
    quiet_end = Integer(null=True, default=None)
    created_at = created_at_column()
    disabled_at = Timestamptz(null=True, default=None)


class StaffUser(Table):
    """Clinic staff. Access to records is by role and always audited."""

    id: Serial
    public_id = public_id_column()
    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    email = Varchar(length=200, unique=True)
    # front_desk | nurse | clinician | billing | admin
    role = Varchar(length=20)
    clinician = ForeignKey(
        references=Clinician, null=True, default=None, on_delete=OnDelete.set_null
    )
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.set_null)
    created_at = created_at_column()
    disabled_at = Timestamptz(null=True, default=None)


class AccessGrant(Table):
    """An account acting for a patient: `self`, or `proxy` (a FHIR RelatedPerson)."""

    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=Account, on_delete=OnDelete.restrict, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=10)  # self | proxy
    # parent | guardian | child | spouse | other (None for self)
    relationship = Varchar(length=20, null=True, default=None)
    # full | appointments_billing | billing | messages
    scope = Varchar(length=30, default="full")
    granted_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    granted_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    starts_at = created_at_column()
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    # patient | staff | adulthood (a guardian's grant ending at 18, when both were told) |
    # replaced (a newer invitation accepted)
    revoked_reason = Varchar(length=20, default="")
    revoked_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    revoked_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()


class CaregiverInvite(Table, tablename="caregiver_invite"):
    """An invitation, by phone or email, to act for a patient with a chosen scope. Accepting
    it (with the same passwordless flow) creates the proxy grant."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.cascade, index=True)
    invited_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    invited_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    channel = Varchar(length=10)  # sms | email
    contact = Varchar(length=200)  # normalised phone or email
    # What the invitee will be to the patient, and may see (AccessGrant.scope).
    relationship = Varchar(length=20, default="other")
    scope = Varchar(length=30)
    grant_expires_at = Timestamptz(null=True, default=None)
    token_hash = Varchar(length=64, unique=True)
    created_at = created_at_column()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    voided_at = Timestamptz(null=True, default=None)
    accepted_by_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
