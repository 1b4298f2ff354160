"""``api/request_log.py``: a request's detail, read back from Temporal — with or without a
worker, for accepted, handler-rejected and door-rejected requests. (The detail of a request
after SUCCESS is asserted in ``routes/test_ingest.py::test_fhir_sample_reaches_success``;
pending activities in ``test_transient_faults.py``.)"""

from __future__ import annotations

import json
import time

from temporalio.client import Client

from tests.conftest import Api, RunningWorker
from tests.factories import FHIR_SYSTEM, JSON, configure_fhir_webhook, fhir_patient, post_sample


async def test_request_detail_answers_without_worker(api: Api, worker: RunningWorker) -> None:
    await worker.stop()
    hook = await configure_fhir_webhook(api)
    answer = await post_sample(api, hook["id"])
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


async def test_handler_rejected_request_shows_its_mapping_with_and_without_a_worker(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    await worker.stop()
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook['id']}", json=fhir_patient(without="deceasedBoolean")
    )
    assert answer.status_code == 422
    request_id = answer.json()["request_id"]
    mapped = {"mrn": "24680", "contact_family": "du Exemplé"}
    identifier = {"system": FHIR_SYSTEM, "value": "24680"}
    # No worker yet: the handler's mapping travels in the workflow input.
    waiting = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    assert (waiting["status"], waiting["verdict"]) == ("REJECTED", "REJECTED")
    assert (waiting["data_points"], waiting["patient_identifier"]) == (mapped, identifier)
    assert [e["code"] for e in waiting["errors"]] == ["missing_required_data_point"]

    await worker.start()
    await temporal_client.get_workflow_handle(request_id).result()
    done = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    assert done["status"] == "REJECTED"
    assert (done["data_points"], done["patient_identifier"]) == (mapped, identifier)
    assert [(e["code"], e["data_point_definition_id"]) for e in done["errors"]] == [
        ("missing_required_data_point", "deceased")
    ]
    # No value from the payload is quoted in any message.
    assert "24680" not in json.dumps(done["errors"]) + json.dumps(done["timeline"])


async def test_a_body_that_does_not_parse_is_shown_as_received(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api)
    answer = await api.http.post(f"/hooks/{hook['id']}", content=b"{nope", headers=JSON)
    assert answer.status_code == 400
    detail = await api.wait_status(answer.json()["request_id"], {"REJECTED"})
    assert detail["payload"] == "{nope"
    assert detail["data_points"] == {} and detail["patient_identifier"] is None
    assert [e["code"] for e in detail["errors"]] == ["invalid_json"]
    assert [t["status"] for t in detail["timeline"]] == ["RECEIVED", "REJECTED"]
