"""Signature schemes, verified on the raw bytes, fail-closed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from careflow.models import SignatureConfig
from careflow.signatures import config_problems, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"old-old-old-old-old-old-old-old!").decode()
BODY = b'{ "a" :  1,\n\t"b": [ 2 ] }'  # unusual whitespace: verified byte for byte


def standard_headers(
    body: bytes, secret: str = SECRET, *, at: datetime | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = StandardWebhook(secret).sign(msg_id, at, body.decode())
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(int(at.timestamp())),
        "Webhook-Signature": signature,
    }


STANDARD = SignatureConfig(scheme="standard-webhooks", secret=SECRET)


def test_standard_webhooks_valid_and_header_case() -> None:
    headers = standard_headers(BODY)
    assert verify(STANDARD, BODY, headers)
    assert verify(STANDARD, BODY, {k.upper(): v for k, v in headers.items()})


def test_standard_webhooks_rejections() -> None:
    headers = standard_headers(BODY)
    assert not verify(STANDARD, BODY + b" ", headers)  # one byte more
    assert not verify(STANDARD, BODY, {})  # missing
    assert not verify(STANDARD, BODY, standard_headers(BODY, OLD_SECRET))  # wrong secret
    stale = datetime.now(UTC) - timedelta(minutes=6)
    future = datetime.now(UTC) + timedelta(minutes=6)
    assert not verify(STANDARD, BODY, standard_headers(BODY, at=stale))
    assert not verify(STANDARD, BODY, standard_headers(BODY, at=future))
    near = datetime.now(UTC) - timedelta(minutes=4)
    assert verify(STANDARD, BODY, standard_headers(BODY, at=near))
    garbage = {**headers, "webhook-signature": "v1,!!!notbase64 nonsense"}
    assert not verify(STANDARD, BODY, garbage)
    assert not verify(STANDARD, b"\xff\xfe", standard_headers(b"x"))


def test_standard_webhooks_rotation_several_signatures() -> None:
    new = standard_headers(BODY)
    old = standard_headers(BODY, OLD_SECRET)
    both = {**new, "webhook-signature": f"{old['Webhook-Signature']} {new['Webhook-Signature']}"}
    assert verify(STANDARD, BODY, both)
    assert verify(SignatureConfig(scheme="standard-webhooks", secret=OLD_SECRET), BODY, both)


@pytest.mark.parametrize(
    ("algorithm", "encoding", "prefix"),
    [("sha256", "hex", "sha256="), ("sha512", "hex", None), ("sha256", "base64", None)],
)
def test_hmac(algorithm: str, encoding: str, prefix: str | None) -> None:
    config = SignatureConfig(
        scheme="hmac",
        secret="s3cret",
        header="X-Hub-Signature-256",
        algorithm=algorithm,
        encoding=encoding,
        prefix=prefix,
    )
    digest = hmac.new(b"s3cret", BODY, getattr(hashlib, algorithm)).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    header = (prefix or "") + value
    assert verify(config, BODY, {"x-hub-signature-256": header})
    assert not verify(config, BODY, {"x-hub-signature-256": (prefix or "") + "00" + value[2:]})
    assert not verify(config, BODY, {})
    assert not verify(config, BODY + b"\n", {"X-Hub-Signature-256": header})


def test_api_key() -> None:
    config = SignatureConfig(scheme="api-key", secret="k-123", header="X-Api-Token")
    assert verify(config, BODY, {"x-api-token": "k-123"})
    assert not verify(config, BODY, {"x-api-token": "k-124"})
    assert not verify(config, BODY, {})


def test_config_problems() -> None:
    assert config_problems(STANDARD) == []
    assert [e.code for e in config_problems(SignatureConfig(scheme="nope", secret="x"))] == [
        "invalid_signature_scheme"
    ]
    assert [e.code for e in config_problems(SignatureConfig(scheme="hmac"))] == [
        "invalid_signature_config"
    ]
    bad = SignatureConfig(scheme="hmac", secret="x", algorithm="md5", encoding="rot13")
    assert len(config_problems(bad)) == 2


@pytest.mark.parametrize("header", ["", "bad header", "X-Sig\n", "X-Sig:"])
def test_a_header_that_no_request_can_carry_is_refused(header: str) -> None:
    config = SignatureConfig(scheme="hmac", secret="x", header=header)
    assert [e.code for e in config_problems(config)] == ["invalid_signature_config"]


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "x-shopify-hmac-sha256", "X_Sig"])
def test_http_field_names_are_accepted(header: str) -> None:
    assert config_problems(SignatureConfig(scheme="hmac", secret="x", header=header)) == []


def test_timestamp_is_seconds() -> None:
    assert abs(int(standard_headers(BODY)["Webhook-Timestamp"]) - time.time()) < 5
