"""``POST /hooks/{id}`` and its test link, through HTTP: real uvicorn, worker, Temporal dev server
and SQLite. Whatever a sender sends gets a clear answer, never a 5xx; nothing is lost or done
twice."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from api.routes.ingest import _OverloadLog
from careflow.settings import Settings
from persistence.store import Store
from tests.careflow.test_signatures import SECRET, standard_headers
from tests.conftest import ADMIN_TOKEN, Api, RunningWorker, free_port, serve_api, start_dev_server
from tests.factories import (
    EHR_PATIENT,
    FHIR_SYSTEM,
    JSON,
    MRN_SYSTEM,
    TERMINAL,
    add_webhook,
    configure_fhir_webhook,
    ehr_webhook,
    fhir_patient,
    open_webhook,
    post_sample,
)


async def test_fhir_sample_reaches_success(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    answer = await post_sample(api, hook["id"])
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "SCHEDULED"
    assert body["status_url"] == f"/v1/requests/{body['request_id']}"

    detail = await api.wait_status(body["request_id"], {"SUCCESS", "FAILED", "REJECTED"})
    assert detail["status"] == "SUCCESS", detail
    assert detail["data_points"] == {
        "mrn": "24680",
        "deceased": False,
        "contact_family": "du Exemplé",
    }
    statuses = [entry["status"] for entry in detail["timeline"]]
    assert statuses[0] == "RECEIVED"
    assert statuses.index("SCHEDULED") < statuses.index("PROCESSING") < statuses.index("SUCCESS")
    assert statuses.count("PROCESSING") == 1  # one row per successful run (break-it review)
    assert detail["payload"]["resourceType"] == "Patient"
    assert detail["temporal"]["workflow_id"] == body["request_id"]
    assert detail["temporal"]["ui_url"].endswith("/history")

    patients = (await api.admin("GET", f"/v1/patients?identifier={FHIR_SYSTEM}|24680")).json()
    assert [p["id"] for p in patients["items"]] == [detail["patient_id"]]
    flows = (await api.admin("GET", f"/v1/care-flows?patient_id={detail['patient_id']}")).json()
    assert [f["id"] for f in flows["items"]] == [detail["care_flow_id"]]
    assert flows["items"][0]["request_id"] == body["request_id"]

    listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}")).json()
    assert [r["request_id"] for r in listed["items"]] == [body["request_id"]]
    assert listed["items"][0]["status"] == "SUCCESS"


async def test_missing_required_data_point_is_422_naming_it(
    api: Api, worker: RunningWorker
) -> None:
    """The answer; what the request log shows of it is in ``tests/api/test_request_log.py``."""
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", json=fhir_patient(without="deceasedBoolean")
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["status"] == "REJECTED"
    assert [(e["code"], e["data_point_definition_id"]) for e in body["errors"]] == [
        ("missing_required_data_point", "deceased")
    ]


@pytest.mark.parametrize(
    ("overrides", "codes"),
    [
        ({}, ["webhook_disabled"]),
        (
            {"care_flow_definition_id": "nope"},
            ["webhook_disabled", "care_flow_definition_not_found"],
        ),
    ],
    ids=["complete", "missing definition"],
)
async def test_disabled_is_403_and_logged(
    api: Api, worker: RunningWorker, store: Store, overrides: dict, codes: list[str]
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    if overrides:  # the API refuses a webhook for a missing definition: the store is told directly
        stored = store.configuration.get_webhook(hook["id"])
        store.configuration.save_webhook(stored.model_copy(update=overrides))
        await asyncio.sleep(api.settings.config_refresh_seconds * 3)
    answer = await post_sample(api, hook["id"])
    assert answer.status_code == 403, answer.text
    assert [e["code"] for e in answer.json()["errors"]] == codes
    detail = await api.wait_status(answer.json()["request_id"], {"REJECTED"})
    assert [e["code"] for e in detail["errors"]] == codes


async def test_unknown_webhook_is_404(api: Api) -> None:
    answer = await api.http.post("/hooks/wh_doesnotexist", json={"a": 1})
    assert answer.status_code == 404
    assert answer.json() == {
        "errors": [{"code": "webhook_not_found", "message": "no webhook with this id"}]
    }


# --- delivery ids and duplicates ------------------------------------------------------------------


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
    request_id = sequential[0].json()["request_id"]
    assert {a.json()["request_id"] for a in sequential} == {request_id}

    concurrent = await asyncio.gather(
        *(
            api.http.post(f"/hooks/{hook_id}", json={"a": 2}, headers={"webhook-id": "evt-c"})
            for _ in range(10)
        )
    )
    assert sorted(a.status_code for a in concurrent) == [200] * 9 + [202]
    assert len({a.json()["request_id"] for a in concurrent}) == 1
    for each in {request_id, concurrent[0].json()["request_id"]}:
        await api.wait_status(each, {"SUCCESS"})
    # A resend after the request finished answers with its status now.
    again = await api.http.post(
        f"/hooks/{hook_id}", json={"a": 1}, headers={"Idempotency-Key": "order-1"}
    )
    assert again.status_code == 200
    assert again.json() == {"request_id": request_id, "status": "SUCCESS", "duplicate": True}
    assert store.patients.count_care_flows() == 2


async def test_delivery_id_from_body_path(api: Api, worker: RunningWorker) -> None:
    hook_id = await open_webhook(api, delivery_id_path="$.event_id")
    first = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-1", "a": 1})
    again = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-1", "a": 1})
    other = await api.http.post(f"/hooks/{hook_id}", json={"event_id": "e-2", "a": 1})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert "e-1" not in first.json()["request_id"]  # hashed, no sender data in ids


async def test_test_ids_never_collide_with_real_deliveries(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    headers = {"webhook-id": "same-delivery"}
    test = await post_sample(api, hook["id"], test=True, headers=headers)
    real = await post_sample(api, hook["id"], headers=headers)
    assert test.status_code == 200 and real.status_code == 202
    assert test.json()["request_id"] != real.json()["request_id"]


# --- signatures -----------------------------------------------------------------------------------


async def test_repeated_delivery_id_header_cannot_replay_a_signed_delivery(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await open_webhook(api, signature={"scheme": "standard-webhooks", "secret": SECRET})
    body = b'{"a": 1}'
    signed = standard_headers(body, msg_id="msg_sig1")
    first = await api.http.post(f"/hooks/{hook_id}", content=body, headers={**JSON, **signed})
    assert first.status_code == 202
    await api.wait_status(first.json()["request_id"], {"SUCCESS"})
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"webhook-id", b"replay-2"),
        *[(k.lower().encode(), v.encode()) for k, v in signed.items()],
    ]
    replay = await api.http.post(f"/hooks/{hook_id}", content=body, headers=raw_headers)
    assert replay.status_code == 400, replay.text
    assert replay.json()["errors"][0]["code"] == "duplicate_header"
    assert store.patients.count_care_flows() == 1


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


# --- bodies ---------------------------------------------------------------------------------------


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
    (
        "gzip",
        b"\x1f\x8b\x08",
        {**JSON, "Content-Encoding": "gzip"},
        415,
        "unsupported_media_type",
    ),
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


async def test_declared_content_length_over_limit_is_refused_unread(
    settings: Settings, store: Store
) -> None:
    small = settings.model_copy(update={"max_payload_bytes": 100})
    async with serve_api(small) as api:
        hook_id = await open_webhook(api)
        answer = await api.http.post(f"/hooks/{hook_id}", content=b"x" * 101, headers=JSON)
        assert answer.status_code == 413
        answer = await api.http.post(f"/hooks/{hook_id}", content=b'{"a": 1}', headers=JSON)
        assert answer.status_code == 202


async def test_data_points_too_large_for_temporal_are_rejected_at_once(
    settings: Settings, store: Store, worker: RunningWorker
) -> None:
    # A budget no loaded machine runs out of: the verdict must come from the handler.
    patient = settings.model_copy(update={"careflow_eval_seconds": 120})
    async with serve_api(patient) as api:
        hook_id = await open_webhook(api)
        # 1e15 re-serialises as 1000000000000000.0: a 0.5 MB body maps to ~2 MB of data points
        # (99,000 values: under the 100,000-value cap).
        body = ('{"a": [' + ",".join(["1e15"] * 99_000) + "]}").encode()
        assert len(body) < 1_048_576
        answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers=JSON)
        assert answer.status_code == 422, answer.text
        assert [e["code"] for e in answer.json()["errors"]] == ["data_points_too_large"]
        test = await api.http.post(f"/hooks/{hook_id}/test", content=body, headers=JSON)
        assert test.json()["verdict"] == "REJECTED"
        detail = await api.wait_status(test.json()["request_id"], {"TEST", "FAILED"}, timeout=30)
        assert detail["status"] == "TEST"


# --- patient identifiers --------------------------------------------------------------------------


async def test_identifier_problems_are_rejected(api: Api, worker: RunningWorker) -> None:
    hook_id = await ehr_webhook(api)
    missing = await api.http.post(f"/hooks/{hook_id}", json={"reason": "x", "patient": {}})
    assert missing.status_code == 422
    assert [e["code"] for e in missing.json()["errors"]] == ["missing_patient_identifier"]
    empty = await api.http.post(
        f"/hooks/{hook_id}", json={"reason": "x", "patient": {"mrn": "   "}}
    )
    assert [e["code"] for e in empty.json()["errors"]] == ["invalid_identifier_value"]
    bad_profile = await api.http.post(
        f"/hooks/{hook_id}",
        json={"reason": "x", "patient": {**EHR_PATIENT, "sex": "robot", "lang": "xx"}},
    )
    assert bad_profile.status_code == 422
    assert {e["code"] for e in bad_profile.json()["errors"]} == {"invalid_profile_field"}


async def test_body_identifier_needs_a_configured_system(api: Api, worker: RunningWorker) -> None:
    await ehr_webhook(api)
    hook = await add_webhook(
        api,
        name="body ids",
        care_flow_definition_id="visit",
        data_point_mappings=[{"data_point_definition_id": "reason", "path": "$.reason"}],
    )
    unknown = await api.http.post(
        f"/hooks/{hook['id']}",
        json={"reason": "x", "patient_identifier": {"system": "mrn", "value": "1"}},
    )
    assert unknown.status_code == 422
    assert [e["code"] for e in unknown.json()["errors"]] == ["unknown_identifier_system"]
    known = await api.http.post(
        f"/hooks/{hook['id']}",
        json={"reason": "x", "patient_identifier": {"system": MRN_SYSTEM, "value": 12.0}},
    )
    assert known.status_code == 202
    detail = await api.wait_status(known.json()["request_id"], {"SUCCESS"})
    assert detail["patient_identifier"] == {"system": MRN_SYSTEM, "value": "12"}


# --- the test link --------------------------------------------------------------------------------


async def test_test_link_validates_and_logs_but_never_processes(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    good = await post_sample(api, hook["id"], test=True)
    assert good.status_code == 200, good.text
    answer = good.json()
    assert answer["status"] == "TEST"
    assert answer["verdict"] == "SCHEDULED"  # the verdict ignores `enabled`
    assert answer["webhook_enabled"] is False
    assert answer["errors"] == []
    assert answer["data_points"]["mrn"] == "24680"
    assert answer["patient_identifier"] == {"system": FHIR_SYSTEM, "value": "24680"}
    assert "signature_valid" not in answer  # only reported for a webhook with a signature

    bad_payload = fhir_patient(without="contact")
    bad = (await api.http.post(f"/hooks/{hook['id']}/test", json=bad_payload)).json()
    assert bad["verdict"] == "REJECTED"
    assert [(e["code"], e["data_point_definition_id"]) for e in bad["errors"]] == [
        ("missing_required_data_point", "contact_family")
    ]
    garbage = await api.http.post(f"/hooks/{hook['id']}/test", content=b"{", headers=JSON)
    assert garbage.status_code == 200
    assert garbage.json()["verdict"] == "REJECTED"
    assert garbage.json()["errors"][0]["code"] == "invalid_json"

    for request_id in (answer["request_id"], bad["request_id"], garbage.json()["request_id"]):
        detail = await api.wait_status(request_id, {"TEST"})
        assert detail["is_test"] is True
    assert store.patients.count_patients() == 0 and store.patients.count_care_flows() == 0

    kept = (await api.admin("GET", f"/v1/webhooks/{hook['id']}/test-payloads")).json()["items"]
    assert [k["request_id"] for k in kept] == [
        garbage.json()["request_id"],
        bad["request_id"],
        answer["request_id"],
    ]
    assert [k["verdict"] for k in kept] == ["REJECTED", "REJECTED", "SCHEDULED"]
    assert kept[0]["payload"] == "{"  # a body that does not parse is kept as text
    assert kept[2]["payload"]["resourceType"] == "Patient"

    # Test requests are left out of the request list unless asked for.
    real = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}")).json()["items"]
    assert real == []
    tests = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}&is_test=true")).json()
    assert len(tests["items"]) == 3


# --- limits and outages ---------------------------------------------------------------------------


async def test_rate_limit_answers_429_and_logs_nothing(settings: Settings, store: Store) -> None:
    limited = settings.model_copy(update={"careflow_rate_limit": "3/minute"})
    async with serve_api(limited) as api:
        hook_id = await open_webhook(api)
        answers = [await api.http.post(f"/hooks/{hook_id}", json={"a": i}) for i in range(5)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert answers[3].json()["errors"][0]["code"] == "rate_limited"
        listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook_id}")).json()
        assert len(listed["items"]) == 3


async def test_start_backpressure_answers_503_and_loses_nothing(
    settings: Settings, store: Store
) -> None:
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


@pytest.mark.parametrize("connected_first", [True, False], ids=["stopped", "never reached"])
async def test_temporal_unavailable_is_503(tmp_path, connected_first: bool) -> None:  # type: ignore[no-untyped-def]
    """Temporal going away after the API connected, and never reachable at all (the lazy
    client's connect failure)."""
    env = await start_dev_server() if connected_first else None
    address = env.client.service_client.config.target_host if env else f"127.0.0.1:{free_port()}"
    settings = Settings(
        careflow_admin_token=ADMIN_TOKEN,
        careflow_data_dir=tmp_path / "data503",
        temporal_address=address,
        careflow_api_port=free_port(),
    )
    async with serve_api(settings) as api:
        hook = await configure_fhir_webhook(api)
        if env is not None:
            assert (await api.http.get("/readyz")).status_code == 200  # the client connects
            await env.shutdown()
        answer = await post_sample(api, hook["id"])
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        assert answer.json()["errors"][0]["code"] == "temporal_unavailable"


async def test_overload_is_answered_before_routing_and_counted(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the start queue is full, a POST to a known webhook or its test link is answered
    503 + Retry-After by ``OverloadFirst``: the route (and so the body, validation, the start and
    the per-answer telemetry) is never reached, the answer is counted under
    ``temporal_unavailable``; the rate limit still comes first (429); an unknown webhook still
    gets its 404 and other paths pass."""
    limited = settings.model_copy(update={"careflow_rate_limit": "3/minute"})
    async with serve_api(limited) as api:
        hook_id = await open_webhook(api)
        services = api.app.state.services
        ingest = services.ingest

        def never(*_: object, **__: object) -> None:
            raise AssertionError("the route was reached")

        monkeypatch.setattr(ingest, "start_queue_is_full", lambda: True)
        monkeypatch.setattr(ingest, "start_queue_full", lambda: 7)
        monkeypatch.setattr(services.telemetry, "observe", never)  # the route's last step
        for path in (f"/hooks/{hook_id}", f"/hooks/{hook_id}/test", f"/hooks/{hook_id}"):
            answer = await api.http.post(path, json={"a": 1})
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "7"
            assert answer.json()["errors"][0]["code"] == "temporal_unavailable"
        limited_answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
        assert limited_answer.status_code == 429
        assert limited_answer.json()["errors"][0]["code"] == "rate_limited"
        assert int(limited_answer.headers["Retry-After"]) >= 1
        monkeypatch.undo()
        assert (await api.http.post("/hooks/wh_nope", json={"a": 1})).status_code == 404
        assert (await api.http.post(f"/hooks/{hook_id}/other", json={})).status_code == 404
        assert (await api.http.get("/healthz")).status_code == 200
        metrics = (await api.http.get("/metrics")).text
        for outcome, count in (("temporal_unavailable", 3), ("rate_limited", 1)):
            labels = f'outcome="{outcome}",webhook_id="{hook_id}"'
            assert f"careflow_webhook_requests_total{{{labels}}} {count}.0" in metrics
        listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook_id}")).json()
        assert listed["items"] == []


def test_overload_answers_are_logged_as_a_count_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overloads = _OverloadLog(every=3600)
    with caplog.at_level(logging.WARNING, logger="api.ingest"):
        for _ in range(5):
            overloads.note()
    assert [r.getMessage() for r in caplog.records] == [
        "overloaded: no workflow start slot free; answered 503 to 1 request(s) since the last "
        "such line"
    ]
