"""A payment reaches the ledger once, whatever runs at the same moment: a partial unique index
(SQLite and PostgreSQL alike) lets one `payment` line name a payment; refunds of it may be
several.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added the ledger.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-04T16:38:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Bills: one ledger line per payment"

INDEXES = (
    "CREATE UNIQUE INDEX ledger_entry_one_per_payment ON ledger_entry (payment) "
    "WHERE kind = 'payment'",
)


class LedgerRaw(Table, tablename="ledger_entry"):
    pass


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def create_indexes() -> None:
        for statement in INDEXES:
            await LedgerRaw.raw(statement)

    manager.add_raw(create_indexes)
    return manager
