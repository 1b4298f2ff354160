"""End to end through HTTP: real uvicorn, real worker, real Temporal dev server, real SQLite."""

from __future__ import annotations

import json
import time

from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import (
    ADMIN_TOKEN,
    FHIR_SYSTEM,
    Api,
    RunningWorker,
    configure_fhir_webhook,
    free_port,
    sample_payload,
    serve_api,
    start_dev_server,
)

JSON = {"Content-Type": "application/json"}


async def test_fhir_sample_reaches_success(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
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
    hook = await configure_fhir_webhook(api)
    payload = json.loads(sample_payload("fhir-r4-patient-example"))
    del payload["deceasedBoolean"]
    answer = await api.http.post(f"/hooks/{hook['id']}", json=payload)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["status"] == "REJECTED"
    assert [(e["code"], e["data_point_definition_id"]) for e in body["errors"]] == [
        ("missing_required_data_point", "deceased")
    ]
    detail = await api.wait_status(body["request_id"], {"REJECTED"})
    assert detail["errors"][0]["data_point_definition_id"] == "deceased"
    # No value from the payload is quoted in any message.
    assert "24680" not in json.dumps(detail["errors"]) + json.dumps(detail["timeline"])


async def test_disabled_is_403_and_logged(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["errors"][0]["code"] == "webhook_disabled"
    detail = await api.wait_status(answer.json()["request_id"], {"REJECTED"})
    assert detail["errors"][0]["code"] == "webhook_disabled"


async def test_unknown_webhook_is_404(api: Api) -> None:
    answer = await api.http.post("/hooks/wh_doesnotexist", json={"a": 1})
    assert answer.status_code == 404
    assert answer.json() == {
        "errors": [{"code": "webhook_not_found", "message": "no webhook with this id"}]
    }


async def test_anonymous_requests_get_distinct_patients(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    patch = {"patient_identifier": None}
    answer = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["patient_identifier"] is None
    assert (await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")).status_code == 200
    ids = []
    for _ in range(2):
        answer = await api.http.post(
            f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
        )
        assert answer.status_code == 202, answer.text
        detail = await api.wait_status(answer.json()["request_id"], {"SUCCESS", "FAILED"})
        assert detail["status"] == "SUCCESS"
        ids.append(detail["patient_id"])
    assert ids[0] != ids[1]
    for patient_id in ids:
        patient = (await api.admin("GET", f"/v1/patients/{patient_id}")).json()
        assert patient["anonymous"] is True
        assert patient["identifiers"] == []
    assert store.patients.count_patients() == 2


async def test_duplicate_delivery_answers_200_and_starts_nothing(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api)
    headers = {**JSON, "Webhook-Id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}
    first = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=headers
    )
    assert first.status_code == 202
    request_id = first.json()["request_id"]
    await api.wait_status(request_id, {"SUCCESS"})
    again = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=headers
    )
    assert again.status_code == 200
    assert again.json() == {"request_id": request_id, "status": "SUCCESS", "duplicate": True}
    assert store.patients.count_care_flows() == 1


async def test_request_detail_answers_without_worker(api: Api, worker: RunningWorker) -> None:
    await worker.stop()
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 202
    request_id = answer.json()["request_id"]
    started = time.monotonic()
    detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    elapsed = time.monotonic() - started
    assert detail["status"] == "RECEIVED", detail
    assert detail["payload"]["resourceType"] == "Patient"
    # Contract: within 2 s (a 0.5 s query timeout, then memo and history). Asserted loosely so
    # a loaded CI machine cannot make it flaky; the point is that it does not hang.
    assert elapsed < 5.0, elapsed
    # A worker that comes back finishes the request: nothing accepted is lost.
    await worker.start()
    assert (await api.wait_status(request_id, {"SUCCESS", "FAILED"}))["status"] == "SUCCESS"


async def test_temporal_stopped_is_503(tmp_path, store: Store) -> None:  # type: ignore[no-untyped-def]
    env = await start_dev_server()
    settings = Settings(
        careflow_admin_token=ADMIN_TOKEN,
        careflow_data_dir=tmp_path / "data503",
        temporal_address=env.client.service_client.config.target_host,
        careflow_api_port=free_port(),
    )
    async with serve_api(settings) as api:
        hook = await configure_fhir_webhook(api)
        await env.shutdown()
        answer = await api.http.post(
            f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        assert answer.json()["errors"][0]["code"] == "temporal_unavailable"
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["temporal"] == "unreachable"


async def test_admin_routes_require_the_token(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = await api.http.get("/v1/webhooks", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["code"] == "unauthorized"
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    assert (await api.http.get("/readyz")).status_code == 200


async def test_enable_gate_lists_every_problem(api: Api) -> None:
    await configure_fhir_webhook(api, enable=False)
    answer = await api.admin(
        "POST",
        "/v1/webhooks",
        json={
            "name": "incomplete",
            "care_flow_definition_id": "intake",
            "data_point_mappings": [{"data_point_definition_id": "mrn", "path": "$.id"}],
            "patient_identifier": {"system": "https://unknown.example/ids", "value_path": "$.id"},
        },
    )
    assert answer.status_code == 201, answer.text
    hook_id = answer.json()["id"]
    answer = await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")
    assert answer.status_code == 409
    problems = sorted(
        (e["code"], e.get("data_point_definition_id")) for e in answer.json()["errors"]
    )
    assert problems == [
        ("missing_data_point_mapping", "contact_family"),
        ("missing_data_point_mapping", "deceased"),
        ("unknown_identifier_system", None),
    ]
    bad_path = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook_id}",
        json={"data_point_mappings": [{"data_point_definition_id": "mrn", "path": "$.[[["}]},
    )
    assert bad_path.status_code == 422
    assert bad_path.json()["errors"][0]["code"] == "invalid_path"


async def test_config_change_reaches_ingest_quickly(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    assert (await api.admin("POST", f"/v1/webhooks/{hook['id']}/disable")).status_code == 200
    # No wait: in the same process the write refreshes the cache before it answers.
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 403


async def test_accepted_requests_finish_after_the_webhook_is_deleted(
    api: Api, worker: RunningWorker
) -> None:
    await worker.stop()
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 202
    assert (await api.admin("DELETE", f"/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).status_code == 404
    gone = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert gone.status_code == 404
    await worker.start()
    done = await api.wait_status(answer.json()["request_id"], {"SUCCESS", "REJECTED", "FAILED"})
    assert done["status"] == "SUCCESS"
