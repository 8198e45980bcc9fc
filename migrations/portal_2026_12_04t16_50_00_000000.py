"""Payment plans: one active plan per account, and one instalment per plan and number, kept
by the database whatever runs at the same moment (partial and composite unique indexes,
SQLite and PostgreSQL alike).

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added the plan tables.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-04T16:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Bills: one active plan per account, one instalment per number"

INDEXES = (
    "CREATE UNIQUE INDEX payment_plan_one_active ON payment_plan (account) "
    "WHERE status = 'active'",
    "CREATE UNIQUE INDEX plan_instalment_number ON plan_instalment (plan, number)",
)


class PlanRaw(Table, tablename="payment_plan"):
    pass


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def create_indexes() -> None:
        for statement in INDEXES:
            await PlanRaw.raw(statement)

    manager.add_raw(create_indexes)
    return manager
