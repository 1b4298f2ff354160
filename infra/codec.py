"""The AES-256-GCM payload codec: every payload Temporal stores is encrypted (contract §7).

Applied by the data converter of the API's client, every worker, the tests and the bench, to
workflow and activity inputs and results, query results, the memo, the static summary and
failures (with the failure converter's ``encode_common_attributes``, a failure's message and
stack trace move into an encoded payload too). Search attributes stay in the clear: Temporal
indexes them, and they carry no PHI.

A payload is encrypted whole (its serialized ``Payload`` message, metadata included) under the
ring's first key with a fresh 12-byte nonce; the result carries two metadata entries in the
clear, ``encoding: binary/encrypted`` (the Temporal samples' convention) and
``encryption-key-id``. Payloads without that encoding pass through ``decode`` unchanged (histories
written before the codec was turned on stay readable).

Before encryption a payload of ``COMPRESS_MIN_BYTES`` or more is compressed with zlib when that
saves bytes: the sealed message is then a ``Payload`` with ``encoding: binary/zlib`` whose data is
the compressed serialized payload (a codec chain, compression inside encryption, which is the only
order that compresses: ciphertext does not). The workflow input's body shrinks to about 40 %
(issue 19: bytes written to Temporal per request). Payloads written before stay readable. Only
holders of a ring key can produce a payload that decompresses, and decompression stops at
``MAX_PAYLOAD_BYTES``. Compression leaks a payload's compressibility through its length; a payload
holds one request's data only, so that length tells nothing about another request.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.exceptions import ApplicationError

from infra.keyring import DecryptionError, KeyNotFoundError, KeyRing

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
COMPRESSED = b"binary/zlib"  # the encoding of a compressed payload, inside the encryption
COMPRESS_MIN_BYTES = 256  # smaller payloads gain (almost) nothing
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # a decompressed payload (Temporal's limit is 2 MiB)

log = logging.getLogger("careflow.codec")


class EncryptionKeyNotFound(ApplicationError):
    """A payload names a key id the ring lacks: ``encryption_key_not_found``, non-retryable.

    Non-retryable on purpose: raised while a workflow task decodes its activation, the SDK then
    fails the workflow execution once (a request FAILED with this code) instead of failing the
    workflow task, which Temporal would retry for ever; raised while an activity decodes its
    input, the activity fails without retries. The message names the key id, never the data.
    """

    def __init__(self, key_id: str, code: str = KeyNotFoundError.code) -> None:
        self.key_id = key_id
        what = "is not in the key ring" if code == KeyNotFoundError.code else "does not decrypt"
        super().__init__(
            f"payload encrypted with key id {key_id!r}, which {what}; "
            "give every API and worker the same CAREFLOW_ENCRYPTION_KEYS",
            type=code,
            non_retryable=True,
        )


class EncryptionCodec(PayloadCodec):
    """Encrypts payloads with ``ring``'s first key; decrypts with whichever key they name.

    Args:
        ring: the key ring.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload (already-encrypted ones are left as they are)."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload; others pass through.

        Raises:
            EncryptionKeyNotFound: a payload's key id is not in the ring (type
                ``encryption_key_not_found``), or it does not authenticate under that key
                (type ``encryption_payload_invalid``).
        """
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload
        key_id, sealed = self.ring.encrypt(_compressed(payload.SerializeToString()))
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=sealed)

    def decrypt(self, payload: Payload, *, log_failure: bool = True) -> Payload:
        """Decrypt one payload (others pass through).

        Args:
            payload: as stored by Temporal.
            log_failure: log one warning when it cannot be decrypted (the codec server,
                which answers such payloads unchanged, logs one line per request instead).

        Raises:
            EncryptionKeyNotFound: as ``decode``.
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        try:
            plain = self.ring.decrypt(key_id, payload.data)
        except (KeyNotFoundError, DecryptionError) as exc:
            if log_failure:
                log.warning("%s: payload key id %r cannot be decrypted here", exc.code, key_id)
            raise EncryptionKeyNotFound(key_id, exc.code) from None
        inner = Payload.FromString(plain)
        if inner.metadata.get("encoding") != COMPRESSED:
            return inner
        try:
            return Payload.FromString(_decompressed(inner.data))
        except (ValueError, zlib.error, DecodeError):  # authenticated: a writer's defect
            log.warning(
                "%s: payload under key id %r does not inflate", DecryptionError.code, key_id
            )
            raise EncryptionKeyNotFound(key_id, DecryptionError.code) from None


def _compressed(serialized: bytes) -> bytes:
    """``serialized`` as a compressed payload's serialization when that is shorter."""
    if len(serialized) < COMPRESS_MIN_BYTES:
        return serialized
    packed = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(serialized))
    smaller = packed.SerializeToString()
    return smaller if len(smaller) < len(serialized) else serialized


def _decompressed(data: bytes) -> bytes:
    """Inflate a compressed payload, at most ``MAX_PAYLOAD_BYTES``.

    Raises:
        zlib.error: the data is not zlib.
        ValueError: it inflates past the bound, or is truncated.
    """
    inflater = zlib.decompressobj()
    plain = inflater.decompress(data, MAX_PAYLOAD_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("a compressed payload is truncated or inflates past its bound")
    return plain


def data_converter(ring: KeyRing) -> DataConverter:
    """The pydantic data converter with the encryption codec and encoded failure attributes."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


class _DropCodecTracebacks(logging.Filter):
    """Drops the SDK's multi-line traceback for a missing key: the codec logged one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, EncryptionKeyNotFound):
                return False
            error = error.__cause__ or error.__context__
        return True


_SDK_LOGGERS = ("temporalio.worker._workflow", "temporalio.activity", "temporalio.worker")


def quiet_sdk_tracebacks() -> None:
    """Install the filter on the SDK loggers that log activation and activity failures."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropCodecTracebacks) for f in logger.filters):
            logger.addFilter(_DropCodecTracebacks())
