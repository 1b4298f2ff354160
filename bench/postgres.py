"""The benches' topology, and the throwaway PostgreSQL server of the scaled one.

``topology()``: one API process and one worker on SQLite (``single``), or with
``BENCH_TOPOLOGY=scaled`` ``BENCH_APIS`` API processes and ``BENCH_WORKERS`` workers on PostgreSQL.

Debian's PostgreSQL (``/usr/lib/postgresql/*/bin``), started like the tests start it
(``tests/persistence/test_store_postgres.py``): a cluster in a temporary directory under /tmp
owned by the ``postgres`` user (PostgreSQL refuses to run as root), trust authentication, loopback
only, on a free port, with one database ``careflow``. ``stop`` ends it and removes the directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.stack import free_ports


def topology_name() -> str:
    """``scaled`` (``BENCH_TOPOLOGY=scaled``) or ``single``."""
    return "scaled" if os.environ.get("BENCH_TOPOLOGY") == "scaled" else "single"


def topology() -> tuple[int, int]:
    """API processes and workers: 1 and 1, or for ``scaled`` ``BENCH_APIS`` and
    ``BENCH_WORKERS`` (default 2 and 2) on PostgreSQL."""
    if topology_name() != "scaled":
        return 1, 1
    return int(os.environ.get("BENCH_APIS", "2")), int(os.environ.get("BENCH_WORKERS", "2"))


def pg_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory.

    Raises:
        RuntimeError: Debian's postgresql is not installed.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "BENCH_TOPOLOGY=scaled needs Debian's postgresql (make test installs it)"
        )
    return Path(found[-1]).parent


class Postgres:
    """One PostgreSQL server; ``url`` is its SQLAlchemy URL (psycopg) once ``start`` returned."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="careflow-bench-pg-"))
        self.data = self.root / "data"
        [self.port] = free_ports(1)
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/careflow"

    def start(self) -> str:
        """initdb, start (``max_connections`` raised for several processes' pools), createdb.

        Returns:
            The SQLAlchemy URL.
        """
        os.chmod(self.root, 0o777)
        run = subprocess.run
        run(
            [*self.as_postgres, str(self.bin / "initdb"), "-D", str(self.data)]
            + ["-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        run(
            [*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options]
            + ["-l", str(self.root / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-U", "postgres", "careflow"],
            check=True,
            capture_output=True,
        )
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        subprocess.run(
            [
                *self.as_postgres,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)
