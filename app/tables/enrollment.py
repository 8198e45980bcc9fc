"""Enrollment invitations: a single-use link sent to the phone or email on the record."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

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
