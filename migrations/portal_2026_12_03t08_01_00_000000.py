"""A slot is booked at most once, whatever runs at the same moment: a partial unique index
(SQLite and PostgreSQL alike) lets one booked appointment hold a slot, and a clinician has
one slot per start time, so generating slots twice adds nothing.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added the slot table and appointment.slot.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-03T08:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Scheduling: one booking per slot, one slot per clinician and start"

INDEXES = (
    "CREATE UNIQUE INDEX appointment_slot_booked ON appointment (slot) WHERE status = 'booked'",
    "CREATE UNIQUE INDEX slot_clinician_start ON slot (clinician, starts_at)",
    # Reminders look for booked visits by start time.
    "CREATE INDEX appointment_booked_start ON appointment (starts_at) WHERE status = 'booked'",
)


class AppointmentRaw(Table, tablename="appointment"):
    pass


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def create_indexes() -> None:
        for statement in INDEXES:
            await AppointmentRaw.raw(statement)

    manager.add_raw(create_indexes)
    return manager
