"""``api/door.py``: the dedupe key read from the headers (then the body path, as the evaluation
does), the headers that must not repeat, and the answer bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from api import door
from careflow.evaluation import body_delivery_id
from careflow.models import RequestError, Webhook
from persistence.store import new_webhook_id


def _hook() -> Webhook:
    now = datetime.now(UTC)
    return Webhook(
        id=new_webhook_id(),
        name="h",
        care_flow_definition_id="intake",
        delivery_id_path="$.event.id",
        created_at=now,
        updated_at=now,
    )


def test_delivery_id_header_then_idempotency_key_then_body_path() -> None:
    assert door.header_delivery_id({"webhook-id": " a ", "idempotency-key": "b"}) == "a"
    assert door.header_delivery_id({"webhook-id": "  ", "idempotency-key": "b"}) == "b"
    assert door.header_delivery_id({}) is None
    assert body_delivery_id("$.event.id", {"event": {"id": " c "}}) == "c"
    assert body_delivery_id("$.event.id", {"event": {"id": 12}}) == "12"
    for value in (True, None, {"x": 1}, [1], "  "):
        assert body_delivery_id("$.event.id", {"event": {"id": value}}) is None, value


def test_duplicate_headers_names_only_the_ones_dedupe_and_signature_read() -> None:
    hook = _hook()
    assert door.duplicate_headers(hook, ["accept", "x-forwarded-for"]) is None
    error = door.duplicate_headers(hook, ["webhook-id", "accept", "idempotency-key"])
    assert error is not None and error.code == "duplicate_header"
    assert error.message.endswith("idempotency-key, webhook-id")


def test_rejected_body_carries_the_request_id_status_and_errors() -> None:
    error = RequestError(code="invalid_json", message="m")
    assert door.rejected_body("r1", [error]) == {
        "request_id": "r1",
        "status": "REJECTED",
        "errors": [{"code": "invalid_json", "message": "m"}],
    }
