"""Remove the text of outbox messages already sent or given up: they may hold sign-in codes
and single-use links. Their length stays; the keyed hash only exists for new messages."""

from datetime import UTC, datetime

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-02T16:34:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Outbox: remove the text of finished messages"


class OutboxRaw(Table, tablename="outbox"):
    pass


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def scrub_finished_messages() -> None:
        await OutboxRaw.raw(
            "UPDATE outbox SET body_length = LENGTH(body), body = '', scrubbed_at = {}"
            " WHERE status IN ('sent', 'dead')",
            datetime.now(UTC),
        )

    manager.add_raw(scrub_finished_messages)
    return manager
