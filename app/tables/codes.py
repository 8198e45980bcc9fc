"""One-time sign-in codes: the fallback for a device without a passkey."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column
from app.tables.people import Account, Patient


class SignInCode(Table, tablename="sign_in_code"):
    id: Serial
    # The browser holds a random handle to its pending code; the table keeps its hash.
    handle_hash = Varchar(length=64, unique=True)
    # HMAC of the six digits with the server secret (a plain hash of six digits is guessable).
    code_hash = Varchar(length=64)
    # None when the contact matched nobody: the answer must look the same either way.
    account = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.cascade)
    # Self-enrollment from a clinic poster: the matched record, which has no account yet.
    patient = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.cascade)
    # HMAC of the normalised phone or email, for the per-contact limit without storing it.
    contact_hash = Varchar(length=64, index=True)
    # What the per-address limit counts: the IPv4 address, or the IPv6 /64 (rate_key).
    ip = Varchar(length=64, default="", index=True)
    created_at = created_at_column()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    failed_attempts = Integer(default=0)
    # A contact that more than one person uses: the records it could mean (ids, comma
    # separated), and when the code was right, so the date of birth can say which one.
    choices = Text(default="")
    code_ok_at = Timestamptz(null=True, default=None)
