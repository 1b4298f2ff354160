"""The database: one engine (one pool) per process, transactions, migrations, the revision.

SQLite runs in WAL mode with a busy timeout, so concurrent writers wait instead of failing; on
PostgreSQL the same statements run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from careflow.errors import TransientStoreError
from infra import data_dir
from persistence.tables import config_revision

_MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Database:
    """The engine and its plumbing.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        if is_sqlite:
            path = sa.make_url(url).database
            if path and path != ":memory:":
                # PHI in the clear: a new directory is 0700, the file and its sidecars 0600.
                if not Path(path).parent.exists():
                    data_dir.private_dir(Path(path).parent)
                data_dir.private_file(Path(path))
        self.engine: Engine = sa.create_engine(
            url,
            pool_pre_ping=not is_sqlite,
            connect_args={"timeout": 30} if is_sqlite else {},
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> None:
        """Apply the Alembic migrations up to head (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise TransientStoreError(
                type(exc.orig).__name__ if exc.orig else "operational"
            ) from exc

    def ping(self) -> None:
        with self.transaction() as conn:
            conn.execute(sa.text("SELECT 1"))

    def bump_revision(self, conn: Connection) -> None:
        """Add one to the configuration revision, creating its row on the first write.

        One upsert (``INSERT … ON CONFLICT DO UPDATE``), so concurrent first writers on a fresh
        database cannot collide on the row's key.
        """
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(config_revision)
            .values(id=1, revision=1)
            .on_conflict_do_update(
                index_elements=[config_revision.c.id],
                set_={"revision": config_revision.c.revision + 1},
            )
        )

    def revision(self) -> int:
        """The configuration revision; bumped by every configuration write."""
        with self.transaction() as conn:
            value = conn.execute(sa.select(config_revision.c.revision)).scalar()
        return int(value or 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
