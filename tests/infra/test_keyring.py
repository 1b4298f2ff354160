"""The key ring: parsing ``CAREFLOW_ENCRYPTION_KEYS``, AES-256-GCM with fresh nonces, rotation."""

from __future__ import annotations

import base64

import pytest

from infra.keyring import DecryptionError, KeyNotFoundError, KeyRing, KeyRingError

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")  # URL-safe, unpadded


def test_parse_first_key_encrypts_all_decrypt() -> None:
    ring = KeyRing.parse(f" b:{KEY_B} , a:{KEY_A} ")
    assert ring.key_ids == ["b", "a"] and ring.encrypting_key_id == "b"
    key_id, sealed = ring.encrypt(b"Jane Doe")
    assert key_id == "b" and b"Jane" not in sealed
    assert ring.decrypt("b", sealed) == b"Jane Doe"


def test_fresh_nonce_per_message() -> None:
    ring = KeyRing.parse(f"a:{KEY_A}")
    sealed = {ring.encrypt(b"same")[1] for _ in range(50)}
    assert len(sealed) == 50
    assert len({s[:12] for s in sealed}) == 50


def test_rotation_a_then_b_a_then_b_alone() -> None:
    old = KeyRing.parse(f"a:{KEY_A}")
    key_id, sealed = old.encrypt(b"MRN-0042")
    assert KeyRing.parse(f"b:{KEY_B},a:{KEY_A}").decrypt(key_id, sealed) == b"MRN-0042"
    with pytest.raises(KeyNotFoundError) as missing:
        KeyRing.parse(f"b:{KEY_B}").decrypt(key_id, sealed)
    assert missing.value.key_id == "a" and missing.value.code == "encryption_key_not_found"
    assert KEY_A not in str(missing.value)


def test_tampered_or_other_key_does_not_authenticate() -> None:
    ring = KeyRing.parse(f"a:{KEY_A}")
    _, sealed = ring.encrypt(b"x")
    with pytest.raises(DecryptionError):
        ring.decrypt("a", sealed[:-1] + bytes([sealed[-1] ^ 1]))
    impostor = KeyRing.parse(f"a:{KEY_B}")
    with pytest.raises(DecryptionError):
        impostor.decrypt("a", sealed)
    with pytest.raises(DecryptionError):
        ring.decrypt("a", b"short")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        " , ",
        "nokey",
        f"bad id:{KEY_A}",
        "a:not-base64!!",
        f"a:{base64.b64encode(b'short').decode()}",
        f"a:{KEY_A},a:{KEY_B}",
    ],
)
def test_malformed_rings_are_refused_without_quoting_keys(spec: str) -> None:
    with pytest.raises(KeyRingError) as refused:
        KeyRing.parse(spec)
    assert KEY_A not in str(refused.value) and KEY_B not in str(refused.value)


def test_generated_entry_parses() -> None:
    ring = KeyRing.parse(KeyRing.generate_entry("k1"))
    assert ring.key_ids == ["k1"]
