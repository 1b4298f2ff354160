"""The temporal backend on the real dev server: the request starts the user's care-flow
workflow (here ``ExampleCareFlow``) with the mapped data points, retries and resets never start
a second execution, and a workflow type nobody serves ends the request FAILED
``care_flow_not_picked_up`` once the request's retry bounds run out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution as ProtoWorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus

from backends.loop import LoopRunner
from backends.temporal_workflow import TemporalWorkflowBackend, care_flow_workflow_id
from careflow.settings import Settings
from examples.care_flow import COMPLETE_SIGNAL, ExampleCareFlowResult
from examples.care_flow_worker import build_example_worker
from infra import temporal
from persistence.store import Store
from tests.conftest import Api, RunningWorker, serve_api
from tests.factories import (
    FHIR_POINTS,
    JSON,
    activity_events,
    add_identifier_system,
    add_webhook,
    sample_payload,
    ui_sign_in,
)

FHIR_MAPPINGS = [
    {
        "data_point_definition_id": "mrn",
        "path": "$.identifier[?(@.system=='urn:oid:1.2.36.146.595.217.0.1')].value",
    },
    {"data_point_definition_id": "deceased", "path": "$.deceasedBoolean"},
    {"data_point_definition_id": "contact_family", "path": "$.contact[0].name.family"},
]


@contextlib.asynccontextmanager
async def example_worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with build_example_worker(client, task_queue):
        yield


async def temporal_webhook(
    api: Api, task_queue: str, workflow_type: str = "ExampleCareFlow"
) -> str:
    """Identifier system, a temporal-backend definition and an enabled webhook for the FHIR
    Patient sample; the webhook id."""
    await add_identifier_system(api, "acme-mrn", "urn:oid:1.2.36.146.595.217.0.1")
    answer = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        json={
            "id": "intake",
            "title": "Patient intake",
            "published": True,
            "backend": {
                "kind": "temporal",
                "workflow_type": workflow_type,
                "task_queue": task_queue,
            },
            "data_point_definitions": FHIR_POINTS,
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["backend"]["kind"] == "temporal"
    hook = await add_webhook(
        api,
        name="FHIR patient feed",
        care_flow_definition_id="intake",
        data_point_mappings=FHIR_MAPPINGS,
        patient_identifier={
            "system_path": "$.identifier[?(@.type.coding[0].code=='MR')].system",
            "value_path": "$.identifier[?(@.type.coding[0].code=='MR')].value",
        },
    )
    return str(hook["id"])


async def executions(client: Client, workflow_id: str) -> int:
    """How many executions (runs, open or closed) have this workflow id."""
    count = 0
    async for _ in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        count += 1
    return count


async def wait_executions(client: Client, workflow_id: str, expected: int) -> int:
    """Visibility is eventually consistent: wait briefly for ``expected``, return the count."""
    for _ in range(50):
        count = await executions(client, workflow_id)
        if count >= expected:
            return count
        await asyncio.sleep(0.1)
    return await executions(client, workflow_id)


async def reset_to_first_task(client: Client, request_id: str) -> None:
    """What the Temporal UI's Reset does: a new run of the request from its first task."""
    handle = client.get_workflow_handle(request_id)
    first_task = None
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            first_task = event.event_id
            break
    assert first_task is not None
    description = await handle.describe()
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=ProtoWorkflowExecution(
                workflow_id=request_id, run_id=description.run_id
            ),
            reason="test",
            workflow_task_finish_event_id=first_task,
            request_id=uuid.uuid4().hex,
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )


async def _sample_succeeds(api: Api, hook_id: str) -> tuple[str, dict[str, Any]]:
    """Post the FHIR sample and wait until its request SUCCEEDED; (request id, detail)."""
    answer = await api.http.post(f"/hooks/{hook_id}", content=sample_payload(), headers=JSON)
    assert answer.status_code == 202, answer.text
    request_id = str(answer.json()["request_id"])
    detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
    assert detail["status"] == "SUCCESS", detail
    return request_id, detail


async def test_care_flow_workflow_runs_with_the_data_points(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    queue = f"care-flows-{uuid.uuid4().hex[:8]}"
    hook_id = await temporal_webhook(api, queue)
    async with example_worker(temporal_client, queue):
        request_id, detail = await _sample_succeeds(api, hook_id)
        care_flow_id = detail["care_flow_id"]
        assert care_flow_id == care_flow_workflow_id(request_id)
        assert detail["care_flow_ui_url"].endswith(f"/workflows/{care_flow_id}")
        assert set(detail["data_points"]) == {"mrn", "deceased", "contact_family"}
        # A remote backend's calls (the pick-up wait may take seconds) stay regular activities;
        # only validation is local.
        assert await activity_events(temporal_client.get_workflow_handle(request_id)) == [
            ("local", temporal.VALIDATE_REQUEST),
            ("activity", temporal.RESOLVE_PATIENT),
            ("activity", temporal.START_CARE_FLOW),
        ]

        handle = temporal_client.get_workflow_handle(care_flow_id)
        ids = await handle.query("data_point_ids", result_type=list[str])
        assert ids == sorted(detail["data_points"])

        flow = (await api.admin("GET", f"/v1/care-flows/{care_flow_id}")).json()
        assert flow["backend"] == "temporal" and flow["status"] == "RUNNING"
        assert flow["request_id"] == request_id
        assert flow["patient_id"] == detail["patient_id"]
        assert flow["data_points"] == detail["data_points"]
        assert flow["ui_url"] == detail["care_flow_ui_url"]
        # The patient lives in the built-in store.
        patient = await api.admin("GET", f"/v1/patients/{detail['patient_id']}")
        assert patient.status_code == 200
        # The web pages link the care flow in the Temporal UI too.
        await ui_sign_in(api)
        page = await api.http.get(f"/ui/requests/{request_id}")
        assert 'id="care-flow-temporal-link"' in page.text
        assert detail["care_flow_ui_url"] in page.text
        page = await api.http.get(f"/ui/care-flows/{care_flow_id}")
        assert page.status_code == 200 and "RUNNING" in page.text
        assert detail["care_flow_ui_url"] in page.text

        await handle.signal(COMPLETE_SIGNAL)
        result = ExampleCareFlowResult.model_validate(await handle.result())
        assert result.completed_by == "signal" and result.request_id == request_id
        flow = (await api.admin("GET", f"/v1/care-flows/{care_flow_id}")).json()
        assert flow["status"] == "COMPLETED"
        # Any other workflow id is not a care flow.
        missing = await api.admin("GET", f"/v1/care-flows/{request_id}")
        assert missing.status_code == 404
        missing = await api.admin("GET", "/v1/care-flows/care-flow-nope")
        assert missing.json()["errors"][0]["code"] == "care_flow_not_found"


async def test_resets_leave_exactly_one_care_flow_execution(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    queue = f"care-flows-{uuid.uuid4().hex[:8]}"
    hook_id = await temporal_webhook(api, queue)
    async with example_worker(temporal_client, queue):
        request_id, detail = await _sample_succeeds(api, hook_id)
        care_flow_id = detail["care_flow_id"]

        # Reset while the care flow runs: USE_EXISTING attaches to it.
        await reset_to_first_task(temporal_client, request_id)
        detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
        assert detail["care_flow_id"] == care_flow_id
        assert "care flow already started" in detail["timeline"][-1]["message"]

        # Reset after it completed: REJECT_DUPLICATE refuses a second run.
        handle = temporal_client.get_workflow_handle(care_flow_id)
        await handle.signal(COMPLETE_SIGNAL)
        await handle.result()
        await reset_to_first_task(temporal_client, request_id)
        detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
        assert detail["status"] == "SUCCESS" and detail["care_flow_id"] == care_flow_id
        assert "care flow already started" in detail["timeline"][-1]["message"]
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert await wait_executions(temporal_client, care_flow_id, 2) == 1
    assert await wait_executions(temporal_client, request_id, 3) == 3  # three request runs


@pytest.fixture
def unserved_settings(settings: Settings) -> Settings:
    """Short bounds: wait 1 s for a pickup, two attempts."""
    return settings.model_copy(update={"care_flow_pickup_seconds": 1.0, "activity_max_attempts": 2})


async def test_unserved_workflow_type_fails_the_request_and_a_retry_attaches(
    unserved_settings: Settings,
    store: Store,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from worker import build_worker

    settings = unserved_settings
    queue = f"care-flows-{uuid.uuid4().hex[:8]}"
    executor = ThreadPoolExecutor(max_workers=4)
    try:
        async with (
            serve_api(settings) as api,
            build_worker(temporal_client, store, settings, executor),
        ):
            hook_id = await temporal_webhook(api, queue)
            loop = asyncio.get_running_loop()
            started = loop.time()
            answer = await api.http.post(
                f"/hooks/{hook_id}", content=sample_payload(), headers=JSON
            )
            request_id = answer.json()["request_id"]
            detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
            took = loop.time() - started
            assert detail["status"] == "FAILED", detail
            (error,) = detail["errors"]
            assert error["code"] == "care_flow_not_picked_up"
            assert queue in error["message"] and "ExampleCareFlow" in error["message"]
            # Two attempts of 1 s each plus one 1 s backoff (measured ~3-4 s here).
            assert took < 30
            care_flow_id = care_flow_workflow_id(request_id)
            handle = temporal_client.get_workflow_handle(care_flow_id)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

            # A worker arrives; the request's retry attaches to the same execution.
            async with example_worker(temporal_client, queue):
                retry = await api.admin("POST", f"/v1/requests/{request_id}/retry")
                assert retry.status_code == 202, retry.text
                detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
                assert detail["status"] == "SUCCESS", detail
                assert detail["care_flow_id"] == care_flow_id
                await handle.signal(COMPLETE_SIGNAL)
                await handle.result()
            assert await wait_executions(temporal_client, care_flow_id, 2) == 1
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


async def test_definition_backend_round_trips_and_refuses_unknown_kinds(api: Api) -> None:
    body: dict[str, Any] = {"id": "x", "title": "X", "published": True}
    answer = await api.admin("POST", "/v1/care-flow-definitions", json=body)
    assert answer.json()["backend"] == {"kind": "builtin"}
    bad = {**body, "id": "y", "backend": {"kind": "fhir"}}
    answer = await api.admin("POST", "/v1/care-flow-definitions", json=bad)
    assert answer.status_code == 422
    bad = {**body, "id": "y", "backend": {"kind": "temporal", "workflow_type": "A"}}
    answer = await api.admin("POST", "/v1/care-flow-definitions", json=bad)
    assert answer.status_code == 422


@pytest.mark.parametrize(
    ("workflow_type", "task_queue", "named"),
    [
        ("A'B", "example-care-flows", "workflow_type"),  # a visibility query would break on it
        ("ExampleCareFlow", "queue\\x", "task_queue"),
        ("WebhookRequestWorkflow", "example-care-flows", "this service's own"),
        ("ExampleCareFlow", "OWN", "this service's own"),  # the service's task queue
        ("ExampleCareFlow", "OWN-patients", "this service's own"),
    ],
)
async def test_a_temporal_backend_naming_our_own_or_unquotable_names_is_refused_at_save(
    api: Api, workflow_type: str, task_queue: str, named: str
) -> None:
    """Review of issue 14: saved, such a definition would start our own workflow as a care flow
    or fail later in a visibility query; refused at save with 422 ``invalid_backend``."""
    task_queue = task_queue.replace("OWN", api.settings.careflow_task_queue)
    backend = {"kind": "temporal", "workflow_type": workflow_type, "task_queue": task_queue}
    body = {"id": "z", "title": "Z", "published": True, "backend": backend}
    answer = await api.admin("POST", "/v1/care-flow-definitions", json=body)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["code"] == "invalid_backend" and named in error["message"]
    fine = {
        **body,
        "backend": {
            **backend,
            "workflow_type": "ExampleCareFlow",
            "task_queue": "example-care-flows",
        },
    }
    assert (await api.admin("POST", "/v1/care-flow-definitions", json=fine)).status_code == 201


async def test_find_active_care_flow_sees_only_running_executions(
    api: Api, worker: RunningWorker, temporal_client: Client, store: Store
) -> None:
    queue = f"care-flows-{uuid.uuid4().hex[:8]}"
    hook_id = await temporal_webhook(api, queue)
    backend = TemporalWorkflowBackend(
        store, temporal_client, LoopRunner(asyncio.get_running_loop())
    )

    async def active(patient_id: str) -> str | None:
        return await asyncio.to_thread(backend.find_active_care_flow, "intake", patient_id)

    async with example_worker(temporal_client, queue):
        answer = await api.http.post(f"/hooks/{hook_id}", content=sample_payload(), headers=JSON)
        detail = await api.wait_status(answer.json()["request_id"], {"SUCCESS"}, timeout=60)
        patient_id, care_flow_id = detail["patient_id"], detail["care_flow_id"]
        for _ in range(50):  # visibility is eventually consistent
            if await active(patient_id) == care_flow_id:
                break
            await asyncio.sleep(0.1)
        assert await active(patient_id) == care_flow_id
        assert await active("pat_other") is None
        # The request that started it does not count it (a run that starts over after it).
        own = await asyncio.to_thread(
            backend.find_active_care_flow, "intake", patient_id, answer.json()["request_id"]
        )
        assert own is None
        handle = temporal_client.get_workflow_handle(care_flow_id)
        await handle.signal(COMPLETE_SIGNAL)
        await handle.result()
        for _ in range(50):
            if await active(patient_id) is None:
                break
            await asyncio.sleep(0.1)
        assert await active(patient_id) is None


@pytest.mark.parametrize("terminate_first", [False, True])
async def test_a_care_flow_never_picked_up_starts_again_after_the_definition_is_fixed(
    unserved_settings: Settings,
    store: Store,
    temporal_client: Client,
    terminate_first: bool,
) -> None:
    """The definition named a task queue nobody polls (a typo): the request FAILED
    ``care_flow_not_picked_up``, its care-flow execution never ran. The operator fixes the
    definition (and perhaps terminates the stale execution) and retries the request: the care
    flow must start where the definition now points — not attach to the stale execution (FAILED
    again) nor take the terminated one as "already started" (SUCCESS with nothing run)."""
    from concurrent.futures import ThreadPoolExecutor

    from worker import build_worker

    settings = unserved_settings
    served = f"care-flows-{uuid.uuid4().hex[:8]}"
    executor = ThreadPoolExecutor(max_workers=4)
    try:
        async with (
            serve_api(settings) as api,
            build_worker(temporal_client, store, settings, executor),
            example_worker(temporal_client, served),
        ):
            hook_id = await temporal_webhook(api, served + "-typo")
            answer = await api.http.post(
                f"/hooks/{hook_id}", content=sample_payload(), headers=JSON
            )
            request_id = answer.json()["request_id"]
            detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
            assert detail["status"] == "FAILED", detail
            assert detail["errors"][0]["code"] == "care_flow_not_picked_up"
            care_flow_id = care_flow_workflow_id(request_id)
            handle = temporal_client.get_workflow_handle(care_flow_id)
            if terminate_first:
                await handle.terminate("never picked up")

            definition = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
            definition["backend"]["task_queue"] = served
            put = await api.admin("PUT", "/v1/care-flow-definitions/intake", json=definition)
            assert put.status_code == 200, put.text
            retry = await api.admin("POST", f"/v1/requests/{request_id}/retry")
            assert retry.status_code == 202, retry.text
            detail = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
            assert detail["status"] == "SUCCESS", detail
            assert detail["care_flow_id"] == care_flow_id
            description = await handle.describe()
            assert description.status == WorkflowExecutionStatus.RUNNING
            assert description.raw_description.execution_config.task_queue.name == served
            assert await handle.query("data_point_ids") == ["contact_family", "deceased", "mrn"]
            await handle.signal(COMPLETE_SIGNAL)
            await handle.result()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


async def test_an_execution_this_service_did_not_start_is_not_a_care_flow(
    api: Api, temporal_client: Client
) -> None:
    """Someone else's execution named ``care-flow-…`` with a ``careflow`` memo but another input
    is answered 404 ``care_flow_not_found``, not 422 ``invalid_request`` (the caller's request
    was fine) nor a 5xx."""
    workflow_id = f"care-flow-foreign-{uuid.uuid4().hex[:8]}"
    handle = await temporal_client.start_workflow(
        "SomeoneElsesWorkflow",
        "not a care-flow input",
        id=workflow_id,
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        memo={"careflow": {"request_id": "req_x"}},
    )
    try:
        answer = await api.admin("GET", f"/v1/care-flows/{workflow_id}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["errors"][0]["code"] == "care_flow_not_found"
    finally:
        await handle.terminate("test")


async def test_a_remote_backends_pending_attempts_are_counted_from_one(
    settings: Settings, store: Store, temporal_client: Client
) -> None:
    """A temporal-backend request tries nothing locally (issue 19: only the built-in backend's
    calls are local first), so the request log adds no local attempt to its pending
    ``start_care_flow``: attempt 1 of 2 while the first pick-up wait runs."""
    from concurrent.futures import ThreadPoolExecutor

    from worker import build_worker

    settings = settings.model_copy(
        update={"care_flow_pickup_seconds": 3.0, "activity_max_attempts": 2}
    )
    queue = f"care-flows-{uuid.uuid4().hex[:8]}"  # nobody serves it
    executor = ThreadPoolExecutor(max_workers=4)
    try:
        async with (
            serve_api(settings) as api,
            build_worker(temporal_client, store, settings, executor),
        ):
            hook_id = await temporal_webhook(api, queue)
            answer = await api.http.post(
                f"/hooks/{hook_id}", content=sample_payload(), headers=JSON
            )
            request_id = answer.json()["request_id"]
            seen: list[dict[str, Any]] = []
            for _ in range(100):
                detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
                if detail["status"] == "FAILED":
                    break
                seen.extend(
                    a
                    for a in detail["pending_activities"]
                    if a["activity_type"] == "start_care_flow"
                )
                await asyncio.sleep(0.1)
            assert seen, "start_care_flow was never seen pending"
            assert seen[0]["attempt"] == 1 and seen[0]["maximum_attempts"] == 2, seen[0]
            assert {a["attempt"] for a in seen} <= {1, 2}
            done = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=60)
            assert done["status"] == "FAILED"
            assert not any("attempt 3" in (t["message"] or "") for t in done["timeline"]), done[
                "timeline"
            ]
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
