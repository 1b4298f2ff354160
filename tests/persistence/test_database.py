"""The database plumbing on SQLite files in tmp_path: transactions, faults, revision, migrations."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from careflow.errors import TransientStoreError
from persistence.database import Database, aware, now
from persistence.tables import config_revision, identifier_systems


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "app.db"


@pytest.fixture
def db(path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    yield database
    database.dispose()


def _names(db: Database) -> list[str]:
    with db.transaction() as conn:
        return list(conn.execute(sa.select(identifier_systems.c.name)).scalars())


def _insert(conn: sa.Connection, name: str) -> None:
    conn.execute(identifier_systems.insert().values(name=name, system=f"urn:{name}"))


def test_the_directory_of_the_sqlite_file_is_created(db: Database, path: Path) -> None:
    assert path.is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(db: Database) -> None:
    with db.transaction() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
    }


def test_a_transaction_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    with db.transaction() as conn:
        _insert(conn, "kept")
    with pytest.raises(RuntimeError), db.transaction() as conn:
        _insert(conn, "dropped")
        raise RuntimeError("boom")
    assert _names(db) == ["kept"]


def test_integrity_errors_pass_through_untranslated(db: Database) -> None:
    """Insert-or-fetch in the repositories relies on seeing IntegrityError itself."""
    with db.transaction() as conn:
        _insert(conn, "a")
    with pytest.raises(IntegrityError), db.transaction() as conn:
        _insert(conn, "a")


def test_an_unreachable_database_is_a_transient_error(db: Database, path: Path) -> None:
    db.dispose()
    directory = path.parent
    away = directory.rename(directory.with_name("away"))
    try:
        with pytest.raises(TransientStoreError) as raised:
            db.ping()
        assert str(raised.value) == "OperationalError"
        assert isinstance(raised.value.__cause__, OperationalError)
    finally:
        away.rename(directory)
    db.ping()  # reachable again: nothing was left broken


@pytest.fixture
def writer_holding_the_lock(path: Path, db: Database) -> Iterator[sqlite3.Connection]:
    """Another process's connection in the middle of a write transaction."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.close()


def test_a_locked_database_is_a_transient_error_once_the_busy_timeout_runs_out(
    db: Database, writer_holding_the_lock: sqlite3.Connection
) -> None:
    @event.listens_for(db.engine, "connect")
    def no_waiting(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    db.engine.dispose()
    with pytest.raises(TransientStoreError), db.transaction() as conn:
        _insert(conn, "blocked")
    with db.transaction() as conn:  # readers are not blocked by a writer (WAL)
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(identifier_systems)).scalar() == 0
        )


def test_a_second_writer_waits_for_the_first_instead_of_failing(
    db: Database, writer_holding_the_lock: sqlite3.Connection
) -> None:
    release = threading.Timer(0.3, writer_holding_the_lock.execute, ["COMMIT"])
    started = time.monotonic()
    release.start()
    with db.transaction() as conn:
        _insert(conn, "waited")
    release.join()
    assert time.monotonic() - started >= 0.25
    assert _names(db) == ["waited"]


def test_the_revision_starts_at_zero_and_each_bump_adds_one(db: Database) -> None:
    assert db.revision() == 0
    for expected in (1, 2, 3):
        with db.transaction() as conn:
            db.bump_revision(conn)
        assert db.revision() == expected
    with db.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(config_revision)).scalar() == 1


def test_a_bump_rolls_back_with_its_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as conn:
        db.bump_revision(conn)
        raise RuntimeError("the write failed")
    assert db.revision() == 0


def test_migrating_again_keeps_the_data(db: Database) -> None:
    with db.transaction() as conn:
        _insert(conn, "kept")
        db.bump_revision(conn)
    db.migrate()
    assert _names(db) == ["kept"]
    assert db.revision() == 1
    with db.transaction() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == _head()


def _head() -> str:
    """The newest migration's revision id."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[2] / "persistence/migrations")
    )
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_now_is_utc() -> None:
    before = datetime.now(UTC)
    moment = now()
    assert moment.tzinfo is UTC
    assert before <= moment <= datetime.now(UTC)


def test_aware_takes_naive_times_as_utc_and_keeps_aware_ones() -> None:
    naive = datetime(2024, 5, 1, 12, 30)
    assert aware(naive) == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    paris = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert aware(paris) is paris


def test_a_driver_qualified_sqlite_url_creates_the_right_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = Database(f"sqlite+pysqlite:///{tmp_path}/nested/app.db")
    try:
        assert (tmp_path / "nested").is_dir()
        assert not (tmp_path / "sqlite+pysqlite:").exists()
    finally:
        database.dispose()
