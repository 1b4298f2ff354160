"""Retry (a reset to the first workflow task) through the API, single and bulk."""

from __future__ import annotations

import json

from persistence.store import Store
from tests.conftest import Api, RunningWorker, configure_fhir_webhook, sample_payload

JSON = {"Content-Type": "application/json"}


async def _definition(api: Api, published: bool) -> None:
    answer = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={
            "title": "Patient intake",
            "published": published,
            "data_point_definitions": [
                {"id": "mrn", "value_type": "string"},
                {"id": "deceased", "value_type": "boolean"},
                {"id": "contact_family", "value_type": "string"},
            ],
        },
    )
    assert answer.status_code == 200, answer.text


async def test_failed_request_retried_after_fix_succeeds_once(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api)
    await _definition(api, published=False)  # start_care_flow will refuse for good
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 202
    request_id = answer.json()["request_id"]
    failed = await api.wait_status(request_id, {"FAILED", "SUCCESS"})
    assert failed["status"] == "FAILED"
    assert failed["errors"][0]["code"] == "care_flow_definition_unpublished"

    await _definition(api, published=True)
    retried = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["run_id"] != failed["temporal"]["run_id"]
    done = await api.wait_status(request_id, {"SUCCESS"})
    assert done["temporal"]["run_id"] == retried.json()["run_id"]
    assert store.patients.count_care_flows() == 1
    # The earlier run stays in visibility, the list shows the request once.
    listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}")).json()
    assert [r["request_id"] for r in listed["items"]] == [request_id]
    assert listed["items"][0]["status"] == "SUCCESS"
    # The earlier FAILED run (closed as Failed, not Terminated) is no longer listed or counted.
    stale = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}&status=FAILED")).json()
    assert stale["items"] == []
    # SUCCESS is not retryable.
    again = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "not_retryable"


async def test_rejected_for_configuration_is_retryable_door_rejection_is_not(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api)
    payload = json.loads(sample_payload("fhir-r4-patient-example"))
    other = {**payload["identifier"][0], "system": "https://other.example/mrn", "value": "X1"}
    payload["identifier"].insert(0, other)
    rejected = await api.http.post(f"/hooks/{hook['id']}", json=payload)
    assert rejected.status_code == 422
    assert rejected.json()["errors"][0]["code"] == "unknown_identifier_system"
    request_id = rejected.json()["request_id"]
    await api.wait_status(request_id, {"REJECTED"})

    garbage = await api.http.post(f"/hooks/{hook['id']}", content=b"{nope", headers=JSON)
    assert garbage.status_code == 400
    assert garbage.json()["errors"][0]["code"] == "invalid_json"
    await api.wait_status(garbage.json()["request_id"], {"REJECTED"})
    refused = await api.admin("POST", f"/v1/requests/{garbage.json()['request_id']}/retry")
    assert refused.status_code == 409

    answer = await api.admin(
        "POST",
        "/v1/identifier-systems",
        json={"name": "other", "system": "https://other.example/mrn"},
    )
    assert answer.status_code == 201
    bulk = await api.admin(
        "POST", "/v1/requests/retry", json={"webhook_id": hook["id"], "status": "REJECTED"}
    )
    assert bulk.status_code == 200, bulk.text
    assert bulk.json() == {"reset": 1, "skipped": 1}
    done = await api.wait_status(request_id, {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS"
    assert done["patient_identifier"] == {"system": "https://other.example/mrn", "value": "X1"}


async def test_unknown_request_is_404(api: Api) -> None:
    answer = await api.admin("GET", "/v1/requests/req_nope")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "request_not_found"
    assert (await api.admin("POST", "/v1/requests/req_nope/retry")).status_code == 404
