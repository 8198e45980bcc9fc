"""The audit trail: append-only rows of who touched which record, when and from where."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
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
    # Both empty until the sealer links the row into the chain (app.services.audit), then set
    # once: the row's place in the chain, and sha256 over the previous sealed row's row_hash and
    # this row's fields, so a changed, removed or moved row breaks the chain at the next
    # `portal audit verify`. The database refuses every other UPDATE (see migrations/).
    # Unique, and a partial index on the rows still waiting: both made in migrations/.
    seal_seq = Integer(null=True, default=None)
    row_hash = Varchar(length=64, default="")


class AuditChainHead(Table):
    """One row: the newest sealed row's place and hash (a removed tail shows against it), and
    the lease that lets one sealer at a time extend the chain."""

    id: Serial
    last_seq = Integer(default=0)
    last_hash = Varchar(length=64, default="")
    holder = Varchar(length=100, default="")
    lease_until = Timestamptz(null=True, default=None)
