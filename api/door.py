"""The answers of the ingest door: rejection errors and statuses, answer bodies, the dedupe key
from the headers, and the IGNORED log line (contract §4). No I/O beyond logging."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from careflow import signatures
from careflow.conditions.models import IgnoredReason
from careflow.messages import ValidationResult
from careflow.models import RequestError, RequestStatus, Webhook
from careflow.settings import Settings

log = logging.getLogger("api.ingest")

# Door rejections found while parsing that are not 400 (contract §4).
DOOR_STATUS = {"unsupported_media_type": 415, "too_many_nodes": 413}

UNSUPPORTED_MEDIA_TYPE = RequestError(
    code="unsupported_media_type",
    message=(
        "send uncompressed application/json, application/x-www-form-urlencoded "
        "or multipart/form-data (with a boundary)"
    ),
)
INVALID_SIGNATURE = RequestError(
    code="invalid_signature", message="the request signature is missing or wrong"
)


def too_large(settings: Settings) -> RequestError:
    """413 ``payload_too_large``: the body exceeds ``max_payload_bytes``."""
    return RequestError(
        code="payload_too_large",
        message=f"the body exceeds {settings.max_payload_bytes} bytes",
    )


def timed_out(settings: Settings) -> RequestError:
    """408 ``request_timeout``: the body did not arrive within ``careflow_body_read_seconds``."""
    return RequestError(
        code="request_timeout",
        message=f"the body was not received within {settings.careflow_body_read_seconds:g} s",
    )


def duplicate_headers(hook: Webhook, repeated_headers: list[str] | None) -> RequestError | None:
    """400 ``duplicate_header`` when a header that dedupe or the signature reads is repeated.

    Args:
        hook: the webhook (its signature header counts).
        repeated_headers: names (lower case) of headers the request carries more than once.
    """
    ambiguous = sorted(set(repeated_headers or ()) & single_headers(hook))
    if not ambiguous:
        return None
    # Dedupe and signature checks must read the same single value.
    return RequestError(
        code="duplicate_header",
        message=f"send each of these headers once: {', '.join(ambiguous)}",
    )


def single_headers(hook: Webhook) -> set[str]:
    """Headers that must not repeat: delivery ids and the webhook's signature headers."""
    names = {"webhook-id", "idempotency-key", "webhook-timestamp", "webhook-signature"}
    if hook.signature is not None:
        names.add((hook.signature.header or signatures.default_header(hook.signature)).lower())
    return names


def header_delivery_id(headers: Mapping[str, str]) -> str | None:
    """The dedupe key from the headers: ``webhook-id``, else ``Idempotency-Key``."""
    for name in ("webhook-id", "idempotency-key"):
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def rejected_body(request_id: str, errors: list[RequestError]) -> dict[str, Any]:
    """A REJECTED answer's body: the request id, the status and the errors."""
    return {
        "request_id": request_id,
        "status": RequestStatus.REJECTED.value,
        "errors": [e.model_dump(exclude_none=True) for e in errors],
    }


def test_link_answer(
    request_id: str,
    result: ValidationResult,
    hook: Webhook,
    signature_valid: bool | None = None,
) -> dict[str, Any]:
    """The test link's answer: the verdict and everything validation found."""
    answer = {
        "request_id": request_id,
        "status": RequestStatus.TEST.value,
        "verdict": result.verdict.value,
        "errors": [e.model_dump(exclude_none=True) for e in result.errors],
        "reasons": [r.model_dump(exclude_none=True) for r in result.reasons],
        "conditions": result.conditions.model_dump() if result.conditions else None,
        "data_points": result.data_points,
        "patient_identifier": (
            result.patient_identifier.model_dump() if result.patient_identifier else None
        ),
        "webhook_enabled": hook.enabled,
    }
    if signature_valid is not None:
        answer["signature_valid"] = signature_valid
    return answer


def log_ignored(webhook_id: str, request_id: str, reasons: list[IgnoredReason]) -> None:
    """Log an IGNORED answer with each rule's path, operator and outcome (never a value)."""
    for reason in reasons:
        rules = " ".join(
            f"{r.rule}:{r.path or '-'}:{r.op}={'true' if r.outcome else 'false'}"
            for r in reason.rules or []
        )
        log.info(
            "ignored webhook=%s request=%s reason=%s%s%s",
            webhook_id,
            request_id,
            reason.code,
            f" rules={rules}" if rules else "",
            f" first_request={reason.request_id}" if reason.request_id else "",
        )
