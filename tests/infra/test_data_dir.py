"""Finding 8 of issue 15: the data dir is 0700 and every file in it 0600, whatever the umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from careflow.settings import Settings
from infra import data_dir
from persistence.store import Store
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(directory: Path) -> dict[str, int]:
    """Permission bits of ``directory`` (as ``"."``) and of everything below it."""
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_store_and_token_are_private_under_umask_022(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with umask(0o022):
        settings = Settings(careflow_data_dir=data)
        store = Store(settings.sqlalchemy_url)
        store.migrate()  # writes: WAL mode creates careflow.db-wal and -shm
        settings.admin_token()
        try:
            found = modes(data)
        finally:
            store.dispose()
    assert {"careflow.db", "careflow.db-wal", "careflow.db-shm", "admin-token"} <= set(found)
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}


def test_secure_tightens_an_existing_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True, mode=0o755)
    (data / "temporal.db").write_text("")
    (data / "sub" / "file").write_text("")
    os.chmod(data, 0o755)
    os.chmod(data / "temporal.db", 0o644)
    data_dir.secure(data)
    assert modes(data) == {".": 0o700, "sub": 0o700, "temporal.db": 0o600, "sub/file": 0o600}


def test_make_run_keeps_every_data_file_private_under_umask_022(tmp_path: Path) -> None:
    """``python cli.py run`` (what ``make run`` runs) from a shell with umask 022: the Temporal
    dev server's files, the store's and the admin token are all 0600 once the stack is up and
    has handled a request."""
    data = tmp_path / "data"
    api_port = free_port()
    env = {
        **os.environ,
        "CAREFLOW_DATA_DIR": str(data),
        "CAREFLOW_API_PORT": str(api_port),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_UI_PORT": str(free_port()),
        "TEMPORAL_UI_INTERNAL_PORT": str(free_port()),
        "CAREFLOW_TASK_QUEUE": "data-dir-test",
    }
    env.pop("CAREFLOW_ADMIN_TOKEN", None)
    with umask(0o022):
        stack = subprocess.Popen([sys.executable, "cli.py", "run"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert stack.poll() is None, "make run exited"
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.5)
        token = (data / "admin-token").read_text().strip()
        answer = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/identifier-systems",
            json={"name": "mrn", "system": "https://example.org/mrn"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        found = modes(data)
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
    assert {"temporal.db", "careflow.db", "careflow.db-wal", "admin-token"} <= set(found), found
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}
