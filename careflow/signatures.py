"""Request signature checks, per webhook, fail-closed.

Schemes:
- ``standard-webhooks`` — Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``; HMAC-SHA256 with a ``whsec_`` base64 secret; several ``v1,`` signatures
  for rotation; 5 minutes of tolerance either way), verified by the ``standardwebhooks`` library.
- ``hmac`` — GitHub/Shopify style: HMAC of the raw body in a configurable header
  (``algorithm`` sha256 | sha512, ``encoding`` hex | base64, optional ``prefix``: ``sha256=``).
- ``api-key`` — a shared value in a header, compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook as StandardWebhook

from careflow.models import RequestError, SignatureConfig

SCHEMES = ("standard-webhooks", "hmac", "api-key")
HMAC_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
HMAC_ENCODINGS = ("hex", "base64")
DEFAULT_HMAC_HEADER = "X-Signature"
DEFAULT_API_KEY_HEADER = "X-API-Key"


def config_problems(config: SignatureConfig) -> list[RequestError]:
    """Why a signature configuration cannot be saved; empty when it can.

    Codes: ``invalid_signature_scheme`` (unknown scheme), ``invalid_signature_config``
    (missing secret, a standard-webhooks secret that is not base64, unknown algorithm/encoding,
    a header that is not an HTTP field name).
    """
    if config.scheme not in SCHEMES:
        return [
            RequestError(
                code="invalid_signature_scheme",
                message=f"signature scheme must be one of {', '.join(SCHEMES)}",
            )
        ]
    problems: list[str] = []
    if not config.secret:
        problems.append("a secret is required")
    elif config.scheme == "standard-webhooks":
        try:
            StandardWebhook(config.secret)
        except (binascii.Error, ValueError, Exception):
            problems.append("the secret must be whsec_ followed by base64")
    if config.scheme == "hmac":
        if (config.algorithm or "sha256") not in HMAC_ALGORITHMS:
            problems.append("algorithm must be sha256 or sha512")
        if (config.encoding or "hex") not in HMAC_ENCODINGS:
            problems.append("encoding must be hex or base64")
    if config.header is not None and not _FIELD_NAME.fullmatch(config.header):
        problems.append("header must be an HTTP field name (RFC 9110 §5.1: a token)")
    return [RequestError(code="invalid_signature_config", message=p) for p in problems]


# RFC 9110 §5.6.2: token = 1*tchar.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def default_header(config: SignatureConfig) -> str:
    """The header a scheme reads when ``config.header`` is not set."""
    return DEFAULT_API_KEY_HEADER if config.scheme == "api-key" else DEFAULT_HMAC_HEADER


def verify(config: SignatureConfig, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the request carries a valid signature for ``config``.

    Args:
        config: the webhook's signature configuration.
        body: the raw body, byte for byte as received.
        headers: the request headers (case-insensitive lookups; names are lowered here).

    Returns:
        True only when the check passes; any missing part or malformed header is False.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    secret = config.secret or ""
    if not secret:
        return False
    try:
        if config.scheme == "standard-webhooks":
            StandardWebhook(secret).verify(body, lowered, json_parse=False)
            return True
        if config.scheme == "hmac":
            given = lowered.get((config.header or DEFAULT_HMAC_HEADER).lower(), "").strip()
            prefix = config.prefix or ""
            if not given.startswith(prefix):
                return False
            given = given[len(prefix) :]
            algorithm = HMAC_ALGORITHMS[config.algorithm or "sha256"]
            digest = hmac.new(secret.encode(), body, algorithm).digest()
            if (config.encoding or "hex") == "hex":
                expected = digest.hex()
                return hmac.compare_digest(expected.encode(), given.lower().encode())
            return hmac.compare_digest(base64.b64encode(digest), given.encode())
        if config.scheme == "api-key":
            given = lowered.get((config.header or DEFAULT_API_KEY_HEADER).lower(), "")
            return hmac.compare_digest(secret.encode(), given.encode())
    except Exception:  # malformed headers, bad base64, non-UTF-8 bodies: all fail closed
        return False
    return False
