"""The data directory holds PHI in the clear (SQLite files of the store and of the Temporal dev
server) and the admin token: the directory is 0700 and every file in it 0600, whatever the
caller's umask (issue 15, finding 8).

SQLite gives a database's ``-wal``, ``-shm`` and journal files the permissions of the database
file, so creating each database file 0600 before its engine opens it covers its sidecars too;
processes that ``make run`` starts also run with umask 077.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# For child processes (the Temporal dev server, the worker, the API): files they create are 0600.
UMASK = 0o077


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700, or tighten it to 0700 if it exists.

    Args:
        path: the data directory (never a shared directory such as ``/tmp``).
    """
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it is missing (an empty file is an empty SQLite
    database), and tighten it and its SQLite sidecars (``-wal``, ``-shm``, ``-journal``) to 0600."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        if candidate.exists():
            os.chmod(candidate, FILE_MODE)


def secure(data_dir: Path) -> None:
    """Make ``data_dir`` 0700 and every file below it 0600 (directories below it 0700)."""
    private_dir(data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            os.chmod(Path(root) / name, DIR_MODE)
        for name in files:
            os.chmod(Path(root) / name, FILE_MODE)
