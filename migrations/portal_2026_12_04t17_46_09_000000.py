"""A staff form posts once: a unique index on a ledger line's form key where it has one
(SQLite and PostgreSQL alike), so a double click cannot post an adjustment twice.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added the column.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-04T17:46:09:000000"
VERSION = "1.38.0"
DESCRIPTION = "Bills: one ledger line per staff form"

INDEXES = (
    "CREATE UNIQUE INDEX ledger_entry_form_key ON ledger_entry (form_key) "
    "WHERE form_key IS NOT NULL",
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
