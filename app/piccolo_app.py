"""The Piccolo app: our tables and the hand-reviewed migrations in ./migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=str(MIGRATIONS_DIR),
    table_classes=table_finder(modules=["app.tables"], exclude_imported=False),
    migration_dependencies=[],
    commands=[],
)
