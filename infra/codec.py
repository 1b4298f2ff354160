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
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

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
        key_id, sealed = self.ring.encrypt(payload.SerializeToString())
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
        return Payload.FromString(plain)


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
