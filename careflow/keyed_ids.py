"""Keyed hashes for ids built from values that may be PHI (a debounce key, an MRN…).

A plain hash of a small value space (5-digit MRNs, appointment numbers) is reversed by trying
every value: SHA-256 of (webhook id, ``24680``) gives the MRN back in a fraction of a second.
Ids that must be stable across requests and replicas but must not reveal the value they
derive from (Temporal workflow ids, which the Temporal UI and its search show) are
HMAC-SHA-256 with a server secret instead, the *id hash key*:

* ``CAREFLOW_ID_HASH_KEY`` when set (used as given: every API and worker replica must share it,
  or the same value gives different ids on different replicas);
* else ``<data dir>/id-hash-key``, generated once (32 random bytes, URL-safe text, mode 0600)
  and kept; replicas sharing a data dir share it.

Changing the key changes every id derived with it (open debounce windows are then not found:
a request may start a care flow a window would have ignored). Pure apart from reading/creating
that file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from careflow.settings import Settings

FILE_NAME = "id-hash-key"
_SEPARATOR = "\x1f"


def keyed_hash(key: bytes, *parts: str) -> str:
    """HMAC-SHA-256 of ``parts`` (joined by U+001F, so ``("a", "bc")`` ≠ ``("ab", "c")``).

    Args:
        key: the id hash key (:func:`id_hash_key`).
        parts: the values the id derives from; put a purpose first (``"debounce"``,
            ``"patient"``) so ids of different uses never collide.

    Returns:
        64 lowercase hex digits; callers may keep a prefix (128 bits is plenty for an id).
    """
    message = _SEPARATOR.join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def id_hash_key(settings: Settings) -> bytes:
    """The id hash key of ``settings``: ``CAREFLOW_ID_HASH_KEY``, else the data dir's key file
    (created on first use). Read once per (given key, data dir)."""
    return _load((settings.careflow_id_hash_key or "").strip(), settings.careflow_data_dir)


@lru_cache(maxsize=16)
def _load(given: str, data_dir: Path) -> bytes:
    if given:
        return given.encode()
    path = data_dir / FILE_NAME
    if path.exists():
        stored = path.read_text().strip()
        if stored:
            return stored.encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    partial = path.with_name(f".{FILE_NAME}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    try:
        # Another process may have written it meanwhile: the first one wins, all read it.
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(partial)
    return path.read_text().strip().encode()
