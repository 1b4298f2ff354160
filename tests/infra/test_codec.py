"""The payload codec and the data converter built on it (infra/codec.py)."""

from __future__ import annotations

import base64
import logging
import os
import zlib

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from infra.codec import (
    COMPRESSED,
    ENCODING,
    KEY_ID,
    MAX_PAYLOAD_BYTES,
    EncryptionCodec,
    EncryptionKeyNotFound,
    data_converter,
    quiet_sdk_tracebacks,
)
from infra.keyring import KeyRing

RING_A = KeyRing.parse("a:" + base64.b64encode(b"a" * 32).decode())
RING_BA = KeyRing.parse(
    "b:" + base64.b64encode(b"b" * 32).decode() + ",a:" + base64.b64encode(b"a" * 32).decode()
)
RING_B = KeyRing.parse("b:" + base64.b64encode(b"b" * 32).decode())


async def test_round_trip_and_metadata() -> None:
    codec = EncryptionCodec(RING_A)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name":"Jane Roe"}')
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"a"
    assert b"Jane" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain]
    assert (await codec.encode([sealed]))[0] is sealed  # never encrypted twice


async def test_unencrypted_payloads_pass_through_decode() -> None:
    legacy = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await EncryptionCodec(RING_A).decode([legacy]) == [legacy]


async def test_rotation_and_missing_key() -> None:
    [sealed] = await EncryptionCodec(RING_A).encode([Payload(data=b"x")])
    assert (await EncryptionCodec(RING_BA).decode([sealed]))[0].data == b"x"
    with pytest.raises(EncryptionKeyNotFound) as missing:
        await EncryptionCodec(RING_B).decode([sealed])
    assert missing.value.type == "encryption_key_not_found" and missing.value.non_retryable
    assert "'a'" in missing.value.message and "x" not in missing.value.message.split("'a'")[0]
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(EncryptionKeyNotFound) as invalid:
        await EncryptionCodec(RING_A).decode([tampered])
    assert invalid.value.type == "encryption_payload_invalid"


async def test_large_payloads_are_compressed_inside_the_encryption() -> None:
    body = b'{"resourceType": "Patient", "name": [{"family": "Roe"}]}' * 60  # ~3.4 kB JSON
    plain = Payload(metadata={"encoding": b"json/plain"}, data=body)
    codec = EncryptionCodec(RING_A)
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    assert len(sealed.data) < len(body) // 4  # compressed, then sealed
    assert b"Roe" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain]
    inner = Payload.FromString(RING_A.decrypt("a", sealed.data))
    assert inner.metadata["encoding"] == COMPRESSED
    # Small or incompressible payloads are sealed as they are.
    for data in (b"1", os.urandom(600)):
        [sealed] = await codec.encode([Payload(data=data)])
        assert Payload.FromString(RING_A.decrypt("a", sealed.data)).data == data


async def test_a_payload_that_does_not_inflate_is_invalid() -> None:
    bomb = zlib.compress(b"\0" * (MAX_PAYLOAD_BYTES + 1))
    for data in (b"not zlib", bomb, zlib.compress(b"x" * 1000)[:-4]):
        packed = Payload(metadata={"encoding": COMPRESSED}, data=data).SerializeToString()
        key_id, sealed = RING_A.encrypt(packed)
        forged = Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=sealed)
        with pytest.raises(EncryptionKeyNotFound) as invalid:
            await EncryptionCodec(RING_A).decode([forged])
        assert invalid.value.type == "encryption_payload_invalid"


async def test_converter_encrypts_values_and_failure_messages() -> None:
    converter = data_converter(RING_A)
    [payload] = await converter.encode([{"mrn": "MRN-1"}])
    assert payload.metadata["encoding"] == ENCODING and b"MRN-1" not in payload.data
    assert await converter.decode([payload], [dict]) == [{"mrn": "MRN-1"}]
    failure = Failure()
    await converter.encode_failure(ApplicationError("patient Jane Roe", type="x_y"), failure)
    assert "Jane" not in failure.message and b"Jane" not in failure.SerializeToString()
    assert failure.application_failure_info.type == "x_y"  # the code stays readable
    decoded = await converter.decode_failure(failure)
    assert "Jane Roe" in str(decoded)


def test_sdk_tracebacks_for_a_missing_key_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    quiet_sdk_tracebacks()
    logger = logging.getLogger("temporalio.worker._workflow")
    try:
        raise EncryptionKeyNotFound("gone")
    except EncryptionKeyNotFound:
        logger.exception("Failed handling activation")
    try:
        raise RuntimeError("other")
    except RuntimeError:
        logger.exception("Failed handling activation")
    assert [r.exc_info[1].__class__.__name__ for r in caplog.records if r.exc_info] == [
        "RuntimeError"
    ]
