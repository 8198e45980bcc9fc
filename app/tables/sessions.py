"""Server-side sessions: the cookie holds a random token, the table only its hash."""

from piccolo.columns import ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, new_public_id
from app.tables.passkeys import Passkey
from app.tables.people import Account, Patient, StaffUser


class WebSession(Table, tablename="web_session"):
    id: Serial
    token_hash = Varchar(length=64, unique=True, index=True)
    # For the devices page's "sign out this device" forms; never the token. Not declared
    # unique (SQLite cannot add a unique column); 72 random bits, always looked up together
    # with the account.
    public_id = Varchar(length=16, index=True, default=new_public_id)
    account = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.cascade)
    staff = ForeignKey(references=StaffUser, null=True, default=None, on_delete=OnDelete.cascade)
    # The profile this device is looking at; resolved against a live grant on every request.
    acting_patient = ForeignKey(
        references=Patient, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()
    last_seen_at = created_at_column()
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    # The passkey that signed this session in, so removing it can end its sessions.
    passkey = ForeignKey(references=Passkey, null=True, default=None, on_delete=OnDelete.set_null)
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")
