"""``/v1/requests``: the list (filters, opaque page tokens, one row per request), the detail's
404, and retry (a reset to the first workflow task), single and bulk."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from api.paging import PageTokens
from api.request_log import RequestLog
from api.request_retry import RequestRetry
from careflow.errors import ConflictError
from persistence.store import Store
from tests.conftest import Api, RunningWorker
from tests.factories import (
    configure_fhir_webhook,
    failed_request,
    open_webhook,
    post_with_unknown_system,
    republish,
)


async def test_unknown_request_is_404(api: Api) -> None:
    answer = await api.admin("GET", "/v1/requests/req_nope")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "request_not_found"
    assert (await api.admin("POST", "/v1/requests/req_nope/retry")).status_code == 404


async def test_pagination_and_filters(api: Api, worker: RunningWorker) -> None:
    hook_id = await open_webhook(api)
    ids = []
    for i in range(5):
        answer = await api.http.post(f"/hooks/{hook_id}", json={"a": i})
        ids.append(answer.json()["request_id"])
    for request_id in ids:
        await api.wait_status(request_id, {"SUCCESS"})
    seen: list[str] = []
    closed: list[str] = []
    token = None
    pages = 0
    while True:
        query = f"/v1/requests?webhook_id={hook_id}&status=SUCCESS&limit=2"
        answer = await api.admin("GET", query + (f"&page_token={token}" if token else ""))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.extend(r["request_id"] for r in body["items"])
        closed.extend(r["updated_at"] for r in body["items"])
        pages += 1
        token = body["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids) and pages >= 3
    assert closed == sorted(closed, reverse=True)  # most recently closed first
    none = await api.admin("GET", f"/v1/requests?webhook_id={hook_id}&status=FAILED")
    assert none.json()["items"] == []
    bad = await api.admin("GET", "/v1/requests?page_token=AAAAAAAAAAAAAAAAAAAA")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "invalid_page_token"
    quoted = await api.admin("GET", "/v1/requests?webhook_id=x' OR 'a'='a")
    assert quoted.status_code == 400
    too_many = await api.admin("GET", "/v1/requests?limit=201")
    assert too_many.status_code == 422


async def test_odd_filters_are_400(api: Api) -> None:
    for query in ("webhook_id=%00", "patient_id=a%00b", "care_flow_definition_id=x%0A"):
        answer = await api.admin("GET", f"/v1/requests?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert answer.json()["errors"][0]["code"] == "invalid_filter"
    bulk = await api.admin(
        "POST", "/v1/requests/retry", json={"status": "FAILED", "webhook_id": "\0"}
    )
    assert bulk.status_code == 400


async def test_failed_request_retried_after_fix_succeeds_once(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api)
    # start_care_flow refuses for good: the definition was unpublished after acceptance.
    request_id = await failed_request(api, worker, hook["id"])
    failed = await api.wait_status(request_id, {"FAILED"})
    assert failed["errors"][0]["code"] == "care_flow_definition_unpublished"

    await republish(api, hook["id"])
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
    rejected = await post_with_unknown_system(api, hook["id"])
    assert rejected.json()["errors"][0]["code"] == "unknown_identifier_system"
    request_id = rejected.json()["request_id"]
    await api.wait_status(request_id, {"REJECTED"})

    garbage = await api.http.post(
        f"/hooks/{hook['id']}", content=b"{nope", headers={"Content-Type": "application/json"}
    )
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
    # The door rejection is skipped, and the answer says why.
    assert bulk.json() == {
        "reset": 1,
        "skipped": 1,
        "skipped_by_reason": {"rejected_at_door": 1},
    }
    done = await api.wait_status(request_id, {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS"
    assert done["patient_identifier"] == {"system": "https://other.example/mrn", "value": "X1"}


async def _runs(client: Client, request_id: str, at_least: int) -> list[WorkflowExecutionStatus]:
    """The statuses of every run of a request, once visibility shows ``at_least`` of them (and
    a moment more, so extra runs would show too)."""
    query = f'WorkflowId = "{request_id}"'
    for _ in range(100):
        runs = [e async for e in client.list_workflows(query)]
        if len(runs) >= at_least:
            await asyncio.sleep(1)
            return [e.status for e in [e async for e in client.list_workflows(query)]]
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility shows {len(runs)} runs")


async def test_concurrent_retries_reset_once_the_others_are_retry_in_progress(
    api: Api, worker: RunningWorker, temporal_client: Client, store: Store
) -> None:
    """Issue 15 finding 7: ten simultaneous retries → one new run and nine 409s; bulk retry
    racing single retries → one reset in all."""
    hook = await configure_fhir_webhook(api)
    request_id = await failed_request(api, worker, hook["id"])
    await republish(api, hook["id"])
    await worker.stop()  # the reset run stays open while the others arrive
    url = f"/v1/requests/{request_id}/retry"
    answers = await asyncio.gather(*(api.admin("POST", url) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 9, [a.text for a in answers]
    codes = {a.json()["errors"][0]["code"] for a in answers if a.status_code == 409}
    assert codes == {"retry_in_progress"}
    statuses = await _runs(temporal_client, request_id, at_least=2)
    assert len(statuses) == 2 and WorkflowExecutionStatus.TERMINATED not in statuses
    late = await api.admin("POST", url)  # the new run has not finished: still in progress
    assert late.status_code == 409 and late.json()["errors"][0]["code"] == "retry_in_progress"
    await worker.start()
    await api.wait_status(request_id, {"SUCCESS"})

    second = await failed_request(api, worker, hook["id"])
    await republish(api, hook["id"])
    await worker.stop()
    bulk_body = {"webhook_id": hook["id"], "status": "FAILED"}
    bulk, *singles = await asyncio.gather(
        api.admin("POST", "/v1/requests/retry", json=bulk_body),
        *(api.admin("POST", f"/v1/requests/{second}/retry") for _ in range(5)),
    )
    assert bulk.status_code == 200, bulk.text
    single_resets = [a for a in singles if a.status_code == 202]
    assert len(single_resets) + bulk.json()["reset"] == 1, (bulk.text, [a.text for a in singles])
    refused = [a.json()["errors"][0]["code"] for a in singles if a.status_code != 202]
    assert set(refused) <= {"retry_in_progress"}
    statuses = await _runs(temporal_client, second, at_least=2)
    assert len(statuses) == 2 and WorkflowExecutionStatus.TERMINATED not in statuses
    await worker.start()
    await api.wait_status(second, {"SUCCESS"})
    assert store.patients.count_care_flows() == 2  # one care flow per request

    # The reviewer's case: the cause not fixed and a worker running, so the winner's new run
    # fails again at once; retries that arrived before it was reset are still refused.
    third = await failed_request(api, worker, hook["id"])
    url = f"/v1/requests/{third}/retry"
    answers = await asyncio.gather(*(api.admin("POST", url) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 9, [a.text for a in answers]
    statuses = await _runs(temporal_client, third, at_least=2)
    assert len(statuses) == 2 and WorkflowExecutionStatus.TERMINATED not in statuses

    # The rule behind it, independent of how fast the API is: a retry that arrived while the
    # winner's run was open is in progress even after that run has failed again; one that
    # arrives later resets it.
    done = await api.wait_status(third, {"FAILED", "REJECTED"})
    new_run = temporal_client.get_workflow_handle(third, run_id=done["run_id"])
    opened = (await new_run.describe()).start_time
    log = RequestLog(temporal_client, api.settings.ui_base_url, PageTokens("x"))
    retries = RequestRetry(temporal_client, log, store.retry_claims)
    with pytest.raises(ConflictError) as refused:
        await retries.retry(third, arrived=opened)
    assert refused.value.errors[0].code == "retry_in_progress"
    assert (await retries.retry(third)).run_id != done["run_id"]
