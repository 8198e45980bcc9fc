"""Passkeys (WebAuthn credentials) and the single-use challenges their ceremonies need."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, StaffUser


class PasskeyColumns:
    """What a passkey keeps, whoever it belongs to: a patient's account (Passkey) or a staff
    member (StaffPasskey). One set of columns, so one ceremony serves both tables."""

    public_id = public_id_column()
    # base64url of the authenticator's credential id and COSE public key
    credential_id = Varchar(length=1400, unique=True)
    public_key = Text()
    sign_count = Integer(default=0)
    # The device, as the person would recognise it ("iPhone", "Chrome on Windows").
    name = Varchar(length=80)
    created_at = created_at_column()
    last_used_at = Timestamptz(null=True, default=None)


class Passkey(PasskeyColumns, Table):
    id: Serial
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True)


class WebAuthnChallenge(Table, tablename="webauthn_challenge"):
    """Stored server-side so any app process can finish a ceremony another one started."""

    id: Serial
    # The browser holds a random handle in a cookie; the table keeps its hash.
    handle_hash = Varchar(length=64, unique=True)
    # register | authenticate; staff_register | staff_authenticate for staff
    purpose = Varchar(length=20)
    challenge = Varchar(length=200)  # base64url
    account = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.cascade)
    # A staff member's ceremony (staff and patients never share a credential or challenge).
    staff = ForeignKey(references=StaffUser, null=True, default=None, on_delete=OnDelete.cascade)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class StaffPasskey(PasskeyColumns, Table, tablename="staff_passkey"):
    """A clinic staff member's passkey: kept apart from patients' so neither can stand in
    for the other."""

    id: Serial
    staff = ForeignKey(references=StaffUser, on_delete=OnDelete.cascade, index=True)
