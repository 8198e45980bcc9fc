"""Audit rows are sealed after commit: existing chains keep their hashes and get seal numbers,
and the append-only guard lets through exactly one UPDATE per row, the seal.

Hand-written: Piccolo runs a migration's raw steps before its column changes, so this step
follows the migration that added audit_event.seal_seq and the audit_chain_head table.
The rows already chained were chained in id order, so that is their seal order; their
row_hash values stay as they are and still verify.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table


class AuditEventRaw(Table, tablename="audit_event", schema=None):
    pass


ID = "2026-12-02T16:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Audit trail: seal numbers for chained rows, the chain head, a guard that allows the seal"

NUMBER_CHAINED_ROWS = """
UPDATE audit_event SET seal_seq = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_event WHERE row_hash <> '')
    AS numbered
WHERE audit_event.id = numbered.id
"""

INDEXES = (
    "CREATE UNIQUE INDEX audit_event_seal_seq ON audit_event (seal_seq)",
    # The sealer's queue: small, and only the rows still waiting.
    "CREATE INDEX audit_event_unsealed ON audit_event (id) WHERE seal_seq IS NULL",
)

START_HEAD = """
INSERT INTO audit_chain_head (id, last_seq, last_hash, holder, lease_until)
SELECT 1, COALESCE(MAX(seal_seq), 0),
    COALESCE((SELECT row_hash FROM audit_event WHERE seal_seq = (SELECT MAX(seal_seq) FROM audit_event)), ''),
    '', NULL
FROM audit_event
"""

# The one UPDATE allowed: an unsealed row gets its place and hash, nothing else changes.
# DELETE stays allowed (`portal seed-demo --reset`); a removed sealed row breaks the chain.
SQLITE_GUARD = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
WHEN NOT (
    OLD.seal_seq IS NULL AND OLD.row_hash = ''
    AND NEW.seal_seq IS NOT NULL AND length(NEW.row_hash) = 64
    AND NEW.id IS OLD.id AND NEW.occurred_at IS OLD.occurred_at
    AND NEW.actor_account IS OLD.actor_account AND NEW.actor_staff IS OLD.actor_staff
    AND NEW.patient IS OLD.patient AND NEW.action IS OLD.action
    AND NEW.resource_type IS OLD.resource_type AND NEW.resource_id IS OLD.resource_id
    AND NEW.ip IS OLD.ip AND NEW.user_agent IS OLD.user_agent
)
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END
"""

OLD_SQLITE_GUARD = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END
"""

# Every column but the two seal columns compared as a whole, so a column added later is
# covered without touching this function.
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seal_seq IS NULL AND OLD.row_hash = ''
        AND NEW.seal_seq IS NOT NULL AND length(NEW.row_hash) = 64
        AND to_jsonb(NEW) - 'seal_seq' - 'row_hash' = to_jsonb(OLD) - 'seal_seq' - 'row_hash'
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only';
END
$$
"""

OLD_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only';
END
$$
"""


async def seal_existing_chain() -> None:
    postgres = isinstance(engine_finder(), PostgresEngine)
    if postgres:
        await AuditEventRaw.raw("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    else:
        await AuditEventRaw.raw("DROP TRIGGER IF EXISTS audit_event_append_only")
    await AuditEventRaw.raw(NUMBER_CHAINED_ROWS)
    for index in INDEXES:
        await AuditEventRaw.raw(index)
    await AuditEventRaw.raw(START_HEAD)
    if postgres:
        await AuditEventRaw.raw(POSTGRES_FUNCTION)
        await AuditEventRaw.raw("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    else:
        await AuditEventRaw.raw(SQLITE_GUARD)


async def refuse_every_update_again() -> None:
    # Rows sealed since keep their hashes; rows still waiting stay without one.
    await AuditEventRaw.raw("DELETE FROM audit_chain_head")
    for name in ("audit_event_seal_seq", "audit_event_unsealed"):
        await AuditEventRaw.raw(f"DROP INDEX IF EXISTS {name}")
    if isinstance(engine_finder(), PostgresEngine):
        await AuditEventRaw.raw(OLD_POSTGRES_FUNCTION)
    else:
        await AuditEventRaw.raw("DROP TRIGGER IF EXISTS audit_event_append_only")
        await AuditEventRaw.raw(OLD_SQLITE_GUARD)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(seal_existing_chain)
    manager.add_raw_backwards(refuse_every_update_again)
    return manager
