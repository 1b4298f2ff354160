"""The migrations build exactly the schema that ``persistence.tables`` declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from persistence.store import Store
from persistence.tables import metadata


def test_migrated_database_equals_the_metadata(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.dispose()
    assert differences == []
