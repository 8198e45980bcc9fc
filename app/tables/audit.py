"""The audit trail: append-only rows of who touched which record, when and from where."""

from piccolo.columns import ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.people import Account, Patient, StaffUser


class AuditEvent(Table):
    id: Serial
    occurred_at = Timestamptz()
    actor_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    actor_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.restrict
    )
    patient = ForeignKey(
        references=Patient, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    # e.g. home.view, results.list, auth.demo_sign_in
    action = Varchar(length=60)
    resource_type = Varchar(length=40, default="")
    resource_id = Varchar(length=40, default="")
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")
    # sha256 over the previous row's row_hash and this row's fields (app.services.audit), so a
    # changed or removed row breaks the chain at the next `portal audit verify`.
    row_hash = Varchar(length=64, default="")
