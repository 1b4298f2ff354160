"""Whatever a sender sends: a clear answer, never a 5xx, nothing lost, nothing twice (issue 7)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from persistence.store import Store
from tests.careflow.test_signatures import SECRET, standard_headers
from tests.conftest import ADMIN_TOKEN, Api, RunningWorker, serve_api

JSON = {"Content-Type": "application/json"}
TERMINAL = {"SUCCESS", "REJECTED", "FAILED", "TEST"}


async def open_webhook(api: Api, **fields: Any) -> str:
    """A webhook whose care flow needs no data point: any JSON body is SCHEDULED."""
    answer = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        json={
            "id": "open",
            "title": "Open",
            "published": True,
            "data_point_definitions": [{"id": "anything", "value_type": "json", "optional": True}],
        },
    )
    assert answer.status_code in (201, 409)
    answer = await api.admin(
        "POST",
        "/v1/webhooks",
        json={
            "name": "open",
            "care_flow_definition_id": "open",
            "data_point_mappings": [{"data_point_definition_id": "anything", "path": "$.a"}],
            **fields,
        },
    )
    assert answer.status_code == 201, answer.text
    hook_id = answer.json()["id"]
    assert (await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")).status_code == 200
    return str(hook_id)


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# The body is carried once, as received: 1 MiB whose every character JSON escapes still starts
# (it is not mapped here; mapped data points have their own cap).
ESCAPES = b'{"b": "' + b"\\u0001" * (1_048_000 // 6) + b'"}'

BAD_BODIES: list[tuple[str, bytes, dict[str, str], int, str | None]] = [
    ("empty", b"", JSON, 400, "empty_body"),
    ("truncated", b'{"a": [1, 2', JSON, 400, "invalid_json"),
    ("invalid utf-8", b'{"a": "\xff\xfe"}', JSON, 400, "invalid_json"),
    ("lone surrogate escape", b'{"a": "\\ud800"}', JSON, 400, "invalid_json"),
    ("surrogate pair escape", b'{"a": "\\ud83d\\ude00"}', JSON, 202, None),
    ("nesting 64", nested(64), JSON, 202, None),
    ("nesting 65", nested(65), JSON, 400, "nesting_too_deep"),
    ("nesting 200", nested(200), JSON, 400, "nesting_too_deep"),
    ("nesting 5000", nested(5000), JSON, 400, "nesting_too_deep"),
    ("huge number", b'{"a": 1e999}', JSON, 400, "non_finite_number"),
    ("NaN", b'{"a": NaN}', JSON, 400, "non_finite_number"),
    ("huge integer", b'{"a": ' + b"9" * 5000 + b"}", JSON, 400, "non_finite_number"),
    ("text/plain", b'{"a": 1}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("no content type", b'{"a": 1}', {}, 415, "unsupported_media_type"),
    ("xml", b"<a/>", {"Content-Type": "application/xml"}, 415, "unsupported_media_type"),
    ("2 MiB", b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}', JSON, 413, "payload_too_large"),
    ("1 MiB of escapes", ESCAPES, JSON, 202, None),
    (
        "BOM",
        b'\xef\xbb\xbf{"a": 1}',
        {"Content-Type": "application/json; charset=utf-8"},
        202,
        None,
    ),
    ("top-level array", b"[1, 2]", JSON, 202, None),
    ("top-level scalar", b"42", JSON, 202, None),
    ("form", b"a=1&a=2&b=x", {"Content-Type": "application/x-www-form-urlencoded"}, 202, None),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "http", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_bad_bodies(
    api: Api,
    worker: RunningWorker,
    name: str,
    body: bytes,
    headers: dict,
    http: int,
    code: str | None,
) -> None:
    hook_id = await open_webhook(api)
    answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers=headers)
    assert answer.status_code == http, answer.text
    data = answer.json()
    if code is not None:
        assert data["status"] == "REJECTED"
        assert [e["code"] for e in data["errors"]] == [code]
    detail = await api.wait_status(data["request_id"], TERMINAL, timeout=30)
    assert detail["status"] == ("SUCCESS" if http == 202 else "REJECTED"), detail
    if code == "payload_too_large":
        assert detail["payload"] is None  # logged, payload omitted


async def test_declared_content_length_over_limit_is_refused_unread(tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    small = settings.model_copy(update={"max_payload_bytes": 100})
    async with serve_api(small) as api:
        hook_id = await open_webhook(api)
        answer = await api.http.post(f"/hooks/{hook_id}", content=b"x" * 101, headers=JSON)
        assert answer.status_code == 413
        answer = await api.http.post(f"/hooks/{hook_id}", content=b'{"a": 1}', headers=JSON)
        assert answer.status_code == 202


async def test_forged_delivery_does_not_burn_the_delivery_id(
    api: Api, worker: RunningWorker
) -> None:
    hook_id = await open_webhook(api, signature={"scheme": "standard-webhooks", "secret": SECRET})
    body = b'{"a": {"x": 1}}'
    genuine = standard_headers(body, msg_id="msg_forged_then_real")
    forged = {**genuine, "Webhook-Signature": "v1," + base64.b64encode(b"f" * 32).decode()}
    first = await api.http.post(f"/hooks/{hook_id}", content=body, headers={**JSON, **forged})
    assert first.status_code == 401
    assert first.json()["errors"][0]["code"] == "invalid_signature"
    refused = await api.wait_status(first.json()["request_id"], {"REJECTED"})
    assert refused["payload"] == {"a": {"x": 1}}  # payload kept
    retry = await api.admin("POST", f"/v1/requests/{first.json()['request_id']}/retry")
    assert retry.status_code == 409  # a signature rejection is never processed by a retry

    second = await api.http.post(f"/hooks/{hook_id}", content=body, headers={**JSON, **genuine})
    assert second.status_code == 202, second.text
    assert second.json()["request_id"] != first.json()["request_id"]
    assert (await api.wait_status(second.json()["request_id"], TERMINAL))["status"] == "SUCCESS"
    # The secret is write-only.
    shown = (await api.admin("GET", f"/v1/webhooks/{hook_id}")).json()["signature"]
    assert "secret" not in shown and shown["has_secret"] is True
    # Test link: the signature is checked and reported, never answered with 401.
    test = await api.http.post(f"/hooks/{hook_id}/test", content=body, headers={**JSON, **forged})
    assert test.status_code == 200
    assert test.json()["signature_valid"] is False


async def test_duplicates_one_request_one_care_flow(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await open_webhook(api)
    sequential = []
    for _ in range(5):
        answer = await api.http.post(
            f"/hooks/{hook_id}", json={"a": 1}, headers={"Idempotency-Key": "order-1"}
        )
        sequential.append(answer)
    assert sequential[0].status_code == 202
    assert {a.status_code for a in sequential[1:]} == {200}
    assert len({a.json()["request_id"] for a in sequential}) == 1

    concurrent = await asyncio.gather(
        *(
            api.http.post(f"/hooks/{hook_id}", json={"a": 2}, headers={"webhook-id": "evt-c"})
            for _ in range(10)
        )
    )
    assert sorted(a.status_code for a in concurrent) == [200] * 9 + [202]
    assert len({a.json()["request_id"] for a in concurrent}) == 1
    for request_id in {sequential[0].json()["request_id"], concurrent[0].json()["request_id"]}:
        await api.wait_status(request_id, {"SUCCESS"})
    assert store.patients.count_care_flows() == 2


async def test_delivery_id_from_body_path(api: Api, worker: RunningWorker) -> None:
    hook_id = await open_webhook(api, delivery_id_path="$.event_id")
    first = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-1", "a": 1})
    again = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-1", "a": 1})
    other = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-2", "a": 1})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert "e-1" not in first.json()["request_id"]  # hashed, no sender data in ids


async def test_rate_limit_answers_429_and_logs_nothing(settings, store: Store) -> None:  # type: ignore[no-untyped-def]
    limited = settings.model_copy(update={"careflow_rate_limit": "3/minute"})
    async with serve_api(limited) as api:
        hook_id = await open_webhook(api)
        answers = [await api.http.post(f"/hooks/{hook_id}", json={"a": i}) for i in range(5)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert answers[3].json()["errors"][0]["code"] == "rate_limited"
        listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook_id}")).json()
        assert len(listed["items"]) == 3


async def test_every_admin_route_requires_the_token(api: Api) -> None:
    routes = [r for r in api_routes(api) if r[1].startswith("/v1")]
    assert len(routes) >= 20
    for method, path in routes:
        concrete = path.replace("{", "").replace("}", "")
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": ADMIN_TOKEN}):
            answer = await api.http.request(method, concrete, headers=headers)
            assert answer.status_code == 401, (method, path, answer.status_code)


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the app, from its own OpenAPI schema."""
    from api.main import create_app

    schema = create_app(api.settings).openapi()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


async def test_start_backpressure_answers_503_and_loses_nothing(settings, store: Store) -> None:  # type: ignore[no-untyped-def]
    """With one start slot and a tiny wait, a burst gets some 503s (nothing started, resend
    safe) and every 202 is a real request."""
    tight = settings.model_copy(
        update={"careflow_max_concurrent_starts": 1, "careflow_start_wait_seconds": 0.001}
    )
    async with serve_api(tight) as api:
        hook_id = await open_webhook(api)
        answers = await asyncio.gather(
            *(api.http.post(f"/hooks/{hook_id}", json={"a": i}) for i in range(40))
        )
        codes = [a.status_code for a in answers]
        assert set(codes) <= {202, 503}
        assert 503 in codes and 202 in codes
        for answer in answers:
            if answer.status_code == 503:
                assert answer.headers["Retry-After"]
                assert answer.json()["errors"][0]["code"] == "temporal_unavailable"
            else:
                detail = await api.admin("GET", f"/v1/requests/{answer.json()['request_id']}")
                assert detail.status_code == 200
