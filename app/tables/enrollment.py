"""Enrollment invitations: a single-use link sent to the phone or email on the record."""

from piccolo.columns import Date, ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.clinic import Location
from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Patient, StaffUser


class EnrollmentInvite(Table, tablename="enrollment_invite"):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.cascade, index=True)
    # SHA-256 of the link's random token (192 bits); the token itself is never stored.
    token_hash = Varchar(length=64, unique=True)
    via = Varchar(length=10)  # sms | email | print
    created_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    # Set when a newer invitation replaces it, or after too many wrong dates of birth.
    voided_at = Timestamptz(null=True, default=None)
    failed_attempts = Integer(default=0)


class StaffInvite(Table, tablename="staff_invite"):
    """A one-time link for a staff member to add their first passkey."""

    id: Serial
    staff = ForeignKey(references=StaffUser, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = created_at_column()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class JoinRequest(Table, tablename="join_request"):
    """Someone who scanned a clinic poster but matched no record: the front desk follows up."""

    id: Serial
    public_id = public_id_column()
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.set_null)
    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    birth_date = Date()
    contact = Varchar(length=200)  # the normalised phone (+1...) or email they gave
    created_at = created_at_column()
    # Set by staff: `enrolled` (an invitation was sent) or `dismissed`.
    closed_at = Timestamptz(null=True, default=None)
    outcome = Varchar(length=20, default="")
    closed_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
