"""The store on a real PostgreSQL server (Debian's, started here in a temp dir): migrations,
and exactly one patient for one new identifier under concurrent insert-or-fetch."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from careflow.models import Identifier, IdentifierSystem
from persistence.store import Store
from tests.conftest import free_port


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "make test installs Debian's postgresql"
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster owned by the ``postgres`` user, on a free port (in /tmp:
    pytest's own temp dirs are private to root, and PostgreSQL refuses to run as root)."""
    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="careflow-pg-"))
    data = root / "data"
    os.chmod(root, 0o777)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    port = free_port()
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "careflow",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/careflow"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_one_patient_per_identifier_under_concurrency(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    store.migrate()  # idempotent
    identifier = Identifier(system="https://example-hospital.org/mrn", value="PG-1")

    def create(i: int) -> tuple[str, bool]:
        patient, created = store.patients.create_patient(identifier, {"n": i}, f"req_{i}")
        return patient.id, created

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, range(30)))
    assert len({patient_id for patient_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert store.patients.count_patients() == 1
    found = store.patients.find_patient(identifier)
    assert found is not None and found.identifiers == [identifier]

    anonymous, created = store.patients.create_patient(None, {}, "req_anon")
    again, created_again = store.patients.create_patient(None, {}, "req_anon")
    assert created and not created_again and anonymous.id == again.id

    flow, started = store.patients.start_care_flow("intake", found.id, {"a": 1}, "req_0")
    same, started_again = store.patients.start_care_flow("intake", found.id, {"a": 1}, "req_0")
    assert started and not started_again and flow.id == same.id
    store.dispose()


def test_concurrent_first_configuration_writes_all_succeed(postgres_url: str) -> None:
    """On a fresh database the revision row does not exist yet; the first writers race for it."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE fresh_revision"))
    admin.dispose()
    store = Store(postgres_url.rsplit("/", 1)[0] + "/fresh_revision")
    store.migrate()

    def create(i: int) -> str:
        item = IdentifierSystem(name=f"system-{i}", system=f"urn:example:system-{i}")
        return store.configuration.create_identifier_system(item).name

    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(create, range(8)))
    assert sorted(names) == sorted(f"system-{i}" for i in range(8))
    assert store.revision() == 8
    store.dispose()


def _fresh_database(postgres_url: str, name: str) -> str:
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    store = Store(url)
    store.migrate()
    store.dispose()
    return url


def test_definition_gate_serialises_with_webhook_writes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15c on PostgreSQL, two replicas (stores): the forced unpublish vs a webhook edit,
    and a new required data point vs an enable (see tests/api/services/)."""
    from tests.api.services.test_configuration_races import (
        check_required_point_races_enable,
        check_unpublish_races_patch,
    )

    check_unpublish_races_patch(_fresh_database(postgres_url, "gate_patch"), monkeypatch)
    check_required_point_races_enable(_fresh_database(postgres_url, "gate_enable"), monkeypatch)
