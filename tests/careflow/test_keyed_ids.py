"""The id hash key and keyed hashes (issue 16 review, finding 3)."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

from careflow.keyed_ids import FILE_NAME, id_hash_key, keyed_hash
from careflow.settings import Settings


def test_keyed_hash_is_hmac_sha256_of_the_joined_parts() -> None:
    digest = keyed_hash(b"k", "patient", "urn:mrn", "24680")
    assert digest == hmac.new(b"k", b"patient\x1furn:mrn\x1f24680", hashlib.sha256).hexdigest()
    assert keyed_hash(b"k", "a", "bc") != keyed_hash(b"k", "ab", "c")
    assert keyed_hash(b"k", "a") != keyed_hash(b"other", "a")


def test_key_is_used_as_given(tmp_path: Path) -> None:
    settings = Settings(careflow_id_hash_key=" shared-secret ", careflow_data_dir=tmp_path / "d")
    assert id_hash_key(settings) == b"shared-secret"
    assert not (tmp_path / "d" / FILE_NAME).exists()


def test_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = id_hash_key(Settings(careflow_data_dir=data))
    path = data / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert path.read_text().strip().encode() == first
    assert list(data.iterdir()) == [path]  # no temporary file left
    # Another process (no cache) reads the same key back.
    from careflow import keyed_ids

    keyed_ids._load.cache_clear()
    assert id_hash_key(Settings(careflow_data_dir=data)) == first
    assert id_hash_key(Settings(careflow_data_dir=tmp_path / "other")) != first
