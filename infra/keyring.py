"""The encryption key ring: AES-256-GCM keys by id, the first one encrypts, all of them decrypt.

Used by the Temporal payload codec (``infra.codec``) and by the app database for the stored
test payloads. The ring is read from ``CAREFLOW_ENCRYPTION_KEYS`` (``id:base64key,...``) or from
the key file generated into the data dir (``Settings.encryption_keys``). Key material never
appears in an error message or a log line; key ids do.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class KeyRingError(ValueError):
    """The key ring setting is malformed (the message names the entry, never the key)."""


class KeyNotFoundError(LookupError):
    """Data was encrypted under a key id that is not in the ring.

    Attributes:
        key_id: the id written beside the ciphertext.
    """

    code = "encryption_key_not_found"

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"encrypted with key id {key_id!r}, which is not in the key ring "
            "(CAREFLOW_ENCRYPTION_KEYS)"
        )


class DecryptionError(ValueError):
    """The ciphertext does not authenticate under the key its id names (tampered or wrong key)."""

    code = "encryption_payload_invalid"

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"ciphertext under key id {key_id!r} does not authenticate")


@dataclass(frozen=True)
class KeyRing:
    """Named AES-256-GCM keys; ``key_ids[0]`` encrypts.

    Args:
        keys: (id, 32-byte key) pairs, the encrypting key first; ids unique.
    """

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("the key ring is empty")
        seen: set[str] = set()
        for key_id, key in self.keys:
            if not _KEY_ID.fullmatch(key_id):
                raise KeyRingError(f"key id {key_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
            if key_id in seen:
                raise KeyRingError(f"key id {key_id!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
            seen.add(key_id)
        object.__setattr__(self, "_ciphers", {i: AESGCM(k) for i, k in self.keys})

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse ``id:base64key[,id:base64key...]`` (standard or URL-safe base64, padded or not).

        Raises:
            KeyRingError: an entry without ``:``, a bad id, bad base64, a key not 32 bytes long,
                a repeated id, or no entry at all.
        """
        keys: list[tuple[str, bytes]] = []
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise KeyRingError(f"entry {len(keys) + 1} is not id:base64key")
            keys.append((key_id.strip(), _b64decode(key_id.strip(), encoded.strip())))
        return cls(tuple(keys))

    @staticmethod
    def generate_entry(key_id: str) -> str:
        """A new ``id:base64key`` entry with a random 256-bit key (for the key file)."""
        return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"

    @property
    def key_ids(self) -> list[str]:
        """The ids, the encrypting one first."""
        return [key_id for key_id, _ in self.keys]

    @property
    def encrypting_key_id(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt with the first key and a fresh random 12-byte nonce.

        Returns:
            (key id, nonce + ciphertext + 16-byte tag). The key id is bound as associated data.
        """
        key_id = self.encrypting_key_id
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + self._cipher(key_id).encrypt(nonce, plaintext, key_id.encode())

    def decrypt(self, key_id: str, sealed: bytes) -> bytes:
        """Decrypt what ``encrypt`` returned.

        Raises:
            KeyNotFoundError: ``key_id`` is not in the ring.
            DecryptionError: the data does not authenticate (tampered, truncated, other key).
        """
        cipher = self._cipher(key_id)
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key_id.encode())
        except (InvalidTag, ValueError):
            raise DecryptionError(key_id) from None

    def _cipher(self, key_id: str) -> AESGCM:
        ciphers: dict[str, AESGCM] = self._ciphers  # type: ignore[attr-defined]
        try:
            return ciphers[key_id]
        except KeyError:
            raise KeyNotFoundError(key_id) from None


def _b64decode(key_id: str, encoded: str) -> bytes:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"key {key_id!r} is not valid base64") from None
