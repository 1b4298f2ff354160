"""Debounce through HTTP on a real Temporal dev server: one care flow per key and window, across
concurrent requests; an absent key never debounces; a FAILED first request releases the window;
the window closes by itself (contract §2 ``debounce``)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from careflow.debounce import window_id
from careflow.keyed_ids import id_hash_key
from careflow.models import CareFlowDefinition
from persistence.store import Store
from tests.conftest import Api, RunningWorker
from tests.factories import add_webhook, save_definition

APPOINTMENT = "$.appointment.id"


async def debounced_webhook(api: Api, seconds: int = 60) -> str:
    await save_definition(
        api, "visit", [{"id": "note", "value_type": "string", "optional": True}], title="Visit"
    )
    hook = await add_webhook(
        api,
        name="scheduler",
        care_flow_definition_id="visit",
        data_point_mappings=[{"data_point_definition_id": "note", "path": "$.note"}],
        debounce={"key_path": APPOINTMENT, "seconds": seconds},
    )
    return str(hook["id"])


async def window_closed(
    api: Api, client: Client, hook_id: str, key: str, timeout: float = 20
) -> None:
    handle = client.get_workflow_handle(window_id(hook_id, key, id_hash_key(api.settings)))
    deadline = asyncio.get_running_loop().time() + timeout
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert asyncio.get_running_loop().time() < deadline, "debounce window still open"
        await asyncio.sleep(0.2)


async def test_twenty_concurrent_requests_with_one_key_start_one_care_flow(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await debounced_webhook(api)
    answers = await asyncio.gather(
        *(
            api.http.post(
                f"/hooks/{hook_id}", json={"appointment": {"id": "apt-77"}, "note": f"n{i}"}
            )
            for i in range(20)
        )
    )
    accepted = [a.json() for a in answers if a.status_code == 202]
    ignored = [a.json() for a in answers if a.status_code == 200]
    assert len(accepted) == 1 and len(ignored) == 19, [a.status_code for a in answers]
    first = accepted[0]["request_id"]
    for body in ignored:
        assert body["status"] == "IGNORED"
        assert body["reasons"] == [
            {
                "code": "debounced",
                "message": "a request with the same debounce key arrived within the window",
                "request_id": first,
            }
        ]
    assert len({b["request_id"] for b in ignored}) == 19
    assert (await api.wait_status(first, {"SUCCESS", "FAILED"}))["status"] == "SUCCESS"
    for body in ignored[:3]:
        detail = await api.wait_status(body["request_id"], {"IGNORED"})
        assert detail["reasons"][0]["request_id"] == first
    assert store.patients.count_care_flows() == 1
    listed = await api.admin("GET", f"/v1/requests?webhook_id={hook_id}&status=IGNORED&limit=50")
    assert len(listed.json()["items"]) == 19

    # Another key has its own window; the key value is stored nowhere in clear.
    other = await api.http.post(f"/hooks/{hook_id}", json={"appointment": {"id": "apt-78"}})
    assert other.status_code == 202
    assert "apt-77" not in window_id(hook_id, "apt-77", id_hash_key(api.settings))


async def test_absent_key_does_not_debounce(api: Api, worker: RunningWorker) -> None:
    hook_id = await debounced_webhook(api)
    first = await api.http.post(f"/hooks/{hook_id}", json={"note": "a"})
    second = await api.http.post(f"/hooks/{hook_id}", json={"appointment": {"id": None}})
    assert (first.status_code, second.status_code) == (202, 202)


async def test_a_duplicate_delivery_of_the_holder_is_answered_as_a_duplicate(
    api: Api, worker: RunningWorker
) -> None:
    hook_id = await debounced_webhook(api)
    body = {"appointment": {"id": "apt-9"}}
    headers = {"Idempotency-Key": "delivery-1"}
    first = await api.http.post(f"/hooks/{hook_id}", json=body, headers=headers)
    again = await api.http.post(f"/hooks/{hook_id}", json=body, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["request_id"] == first.json()["request_id"]


async def test_a_failed_first_request_releases_the_window(
    api: Api, worker: RunningWorker, store: Store, temporal_client: Client
) -> None:
    hook_id = await debounced_webhook(api)
    # start_care_flow refuses an unpublished definition for good: the request ends FAILED.
    definition: CareFlowDefinition = store.configuration.get_care_flow_definition("visit")
    store.configuration.update_care_flow_definition(
        definition.model_copy(update={"published": False})
    )
    body: dict[str, Any] = {"appointment": {"id": "apt-1"}}
    first = await api.http.post(f"/hooks/{hook_id}", json=body)
    assert first.status_code == 202
    first_id = first.json()["request_id"]
    held = await api.http.post(f"/hooks/{hook_id}", json=body)
    assert held.status_code == 200
    assert held.json()["reasons"][0]["request_id"] == first_id

    failed = await api.wait_status(first_id, {"FAILED", "SUCCESS"})
    assert failed["status"] == "FAILED"
    await window_closed(api, temporal_client, hook_id, "apt-1")
    detail = await api.wait_status(first_id, {"FAILED"})
    assert "debounce window released" in [t["message"] for t in detail["timeline"]]

    store.configuration.update_care_flow_definition(definition)
    after = await api.http.post(f"/hooks/{hook_id}", json=body)
    assert after.status_code == 202, after.text
    assert (await api.wait_status(after.json()["request_id"], {"SUCCESS", "FAILED"}))[
        "status"
    ] == "SUCCESS"
    assert store.patients.count_care_flows() == 1


async def test_the_window_closes_after_its_seconds(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    hook_id = await debounced_webhook(api, seconds=1)
    body = {"appointment": {"id": "apt-2"}}
    assert (await api.http.post(f"/hooks/{hook_id}", json=body)).status_code == 202
    await window_closed(api, temporal_client, hook_id, "apt-2")
    assert (await api.http.post(f"/hooks/{hook_id}", json=body)).status_code == 202


async def test_debounce_holds_without_a_worker(api: Api) -> None:
    """The claim is the workflow start itself: no worker is needed to hold the window."""
    hook_id = await debounced_webhook(api)
    body = {"appointment": {"id": "apt-3"}}
    first = await api.http.post(f"/hooks/{hook_id}", json=body)
    second = await api.http.post(f"/hooks/{hook_id}", json=body)
    assert (first.status_code, second.status_code) == (202, 200)


async def test_the_test_link_reports_the_window_without_claiming_it(
    api: Api, worker: RunningWorker
) -> None:
    hook_id = await debounced_webhook(api)
    body = {"appointment": {"id": "apt-t"}}
    free = await api.http.post(f"/hooks/{hook_id}/test", json=body)
    assert free.status_code == 200
    assert free.json()["debounce"] == {"state": "free"}
    no_key = await api.http.post(f"/hooks/{hook_id}/test", json={"appointment": {"id": {}}})
    assert no_key.json()["debounce"] == {"state": "no_key"}
    # The test request claimed nothing: a real request takes the window.
    first = await api.http.post(f"/hooks/{hook_id}", json=body)
    assert first.status_code == 202
    held = await api.http.post(f"/hooks/{hook_id}/test", json=body)
    assert held.json()["debounce"] == {"state": "held", "request_id": first.json()["request_id"]}
    assert held.json()["verdict"] == "SCHEDULED"  # the conditions' verdict, debounce apart


async def test_a_bulk_retry_claims_the_window_like_new_requests(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await debounced_webhook(api)
    go = {"rules": [{"path": "$.go", "op": "equals", "value": "yes"}]}
    patched = await api.admin("PATCH", f"/v1/webhooks/{hook_id}", json={"conditions": go})
    assert patched.status_code == 200, patched.text
    body = {"appointment": {"id": "apt-r"}, "go": "no"}
    ids = []
    for _ in range(5):
        answer = await api.http.post(f"/hooks/{hook_id}", json=body)
        assert answer.json()["status"] == "IGNORED"
        ids.append(answer.json()["request_id"])
    first_runs = {}
    for request_id in ids:
        detail = await api.wait_status(request_id, {"IGNORED"})
        first_runs[request_id] = detail["temporal"]["run_id"]

    # Now every one of them meets the conditions: retried together, one care flow starts.
    cleared = await api.admin("PATCH", f"/v1/webhooks/{hook_id}", json={"conditions": None})
    assert cleared.status_code == 200, cleared.text
    bulk = await api.admin(
        "POST", "/v1/requests/retry", json={"webhook_id": hook_id, "status": "IGNORED"}
    )
    assert bulk.json()["reset"] == 5, bulk.text
    finals = {}
    deadline = asyncio.get_running_loop().time() + 30
    while len(finals) < 5:
        assert asyncio.get_running_loop().time() < deadline, finals
        for request_id in ids:
            detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
            if detail["temporal"]["run_id"] != first_runs[request_id] and detail["status"] in (
                "SUCCESS",
                "IGNORED",
                "FAILED",
            ):
                finals[request_id] = detail
        await asyncio.sleep(0.3)
    statuses = sorted(d["status"] for d in finals.values())
    assert statuses == ["IGNORED"] * 4 + ["SUCCESS"], statuses
    [winner] = [i for i, d in finals.items() if d["status"] == "SUCCESS"]
    for detail in finals.values():
        if detail["status"] == "IGNORED":
            assert detail["reasons"][0]["code"] == "debounced"
            assert detail["reasons"][0]["request_id"] == winner
    assert store.patients.count_care_flows() == 1
    # A new request with the key is debounced by the retried one.
    later = await api.http.post(f"/hooks/{hook_id}", json={"appointment": {"id": "apt-r"}})
    assert later.json()["status"] == "IGNORED"
    assert later.json()["reasons"][0]["request_id"] == winner
