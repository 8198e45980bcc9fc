"""Audit rows are append-only: chain the rows already written, then refuse UPDATE.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added audit_event.row_hash.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from app.services.audit import AUDIT_CHAIN_LOCK, audit_row_hash


class AuditEventRaw(Table, tablename="audit_event", schema=None):
    pass


ID = "2026-11-23T11:30:27:108691"
VERSION = "1.38.0"
DESCRIPTION = "Audit trail: hash the existing rows, refuse UPDATE of audit rows"

BATCH = 1000

# DELETE stays allowed: `portal seed-demo --reset` empties every table, and a row removed
# from the middle of the trail breaks the chain anyway.
SQLITE_GUARD = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END
"""

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only';
END
$$
"""

POSTGRES_GUARD = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
"""


async def _chain_existing_rows() -> None:
    # Rows written before the chain existed get their hashes now, in id order, while
    # UPDATE is still allowed; writers of the new code wait on the same lock meanwhile.
    if isinstance(engine_finder(), PostgresEngine):
        await AuditEventRaw.raw("SELECT pg_advisory_xact_lock({})", AUDIT_CHAIN_LOCK)
    previous = ""
    after = 0
    while True:
        rows = await AuditEventRaw.raw(
            "SELECT id, occurred_at, actor_account, actor_staff, patient, action,"
            " resource_type, resource_id, ip, user_agent"
            " FROM audit_event WHERE id > {} ORDER BY id LIMIT {}",
            after,
            BATCH,
        )
        for row in rows:
            previous = audit_row_hash(previous, row)
            await AuditEventRaw.raw(
                "UPDATE audit_event SET row_hash = {} WHERE id = {}", previous, row["id"]
            )
        if len(rows) < BATCH:
            return
        after = rows[-1]["id"]


async def append_only() -> None:
    await _chain_existing_rows()
    if isinstance(engine_finder(), PostgresEngine):
        await AuditEventRaw.raw(POSTGRES_FUNCTION)
        await AuditEventRaw.raw(POSTGRES_GUARD)
    else:
        await AuditEventRaw.raw(SQLITE_GUARD)


async def allow_updates_again() -> None:
    if isinstance(engine_finder(), PostgresEngine):
        await AuditEventRaw.raw("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        await AuditEventRaw.raw("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        await AuditEventRaw.raw("DROP TRIGGER IF EXISTS audit_event_append_only")


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="portal", description=DESCRIPTION
    )
    manager.add_raw(append_only)
    manager.add_raw_backwards(allow_updates_again)
    return manager
