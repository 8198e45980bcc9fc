"""The dashboard's roll-up reads a month of facts by kind, and its follow-up and first-sign-in
checks look a patient's facts up by kind: two indexes on the fact table; the page reads a
year of figures by month.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added the tables.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-04T16:37:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Dashboard: indexes for the roll-up"

INDEXES = (
    "CREATE INDEX fact_month_kind ON fact (month, kind, location)",
    "CREATE INDEX fact_patient_kind ON fact (patient, kind)",
    "CREATE INDEX dashboard_figure_month ON dashboard_figure (month, location)",
)


class FactRaw(Table, tablename="fact"):
    pass


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def create_indexes() -> None:
        for statement in INDEXES:
            await FactRaw.raw(statement)

    manager.add_raw(create_indexes)
    return manager
