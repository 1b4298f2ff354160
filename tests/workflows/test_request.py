"""``workflows/request.py``: WebhookRequestWorkflow with a real worker per test on a unique
task queue, started directly as the ingest handler would."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from careflow.messages import RequestState
from careflow.models import RequestError, RequestStatus, Webhook
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store
from tests.conftest import RunningWorker
from tests.factories import MRN_SYSTEM, activity_events, start_request, store_webhook


async def start(
    client: Client, settings: Settings, hook: Webhook, body: Any, **handler: Any
) -> WorkflowHandle[Any, RequestState]:
    return await start_request(client, settings.careflow_task_queue, hook, body, **handler)


async def activities_scheduled(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Activity types in history order, local activities (their markers) included."""
    return [name for _, name in await activity_events(handle)]


async def test_success_sets_search_attributes_and_phi_free_result(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store)
    body = {"age": "42", "patient_identifier": {"system": MRN_SYSTEM, "value": "MRN-SECRET-77"}}
    handle = await start(temporal_client, settings, hook, body)
    state = await handle.result()
    assert state.status == RequestStatus.SUCCESS
    # The result is the settled state without what the history holds once already.
    assert state.data_points == {} and state.patient_identifier is None
    assert (await handle.query(temporal.STATUS_QUERY, result_type=RequestState)).data_points == {
        "age": 42
    }
    description = await handle.describe()
    attrs = description.typed_search_attributes
    assert attrs.get(temporal.SA_REQUEST_STATUS) == "SUCCESS"
    assert attrs.get(temporal.SA_PATIENT_ID) == state.patient_id
    assert attrs.get(temporal.SA_CARE_FLOW_ID) == state.care_flow_id
    assert attrs.get(temporal.SA_CARE_FLOW_DEFINITION_ID) == "intake"
    assert await description.memo() == {}  # a completed run's result holds its state
    assert "MRN-SECRET-77" not in state.model_dump_json()
    assert "MRN-SECRET-77" not in handle.id
    query = await handle.query(temporal.STATUS_QUERY, result_type=RequestState)
    assert query.status == RequestStatus.SUCCESS
    assert await activities_scheduled(handle) == [
        temporal.VALIDATE_REQUEST,
        temporal.RESOLVE_PATIENT,
        temporal.START_CARE_FLOW,
    ]


async def test_success_history_writes_only_visible_changes(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    """The cheaper shape (issue 19): validation, patient resolution and the care flow start as
    local activities in the first workflow task (three markers), the status search attribute
    written once when the request settles (RECEIVED → SUCCESS, with the patient, care flow and
    definition ids), no memo (the result holds the settled state): 9 events. The timeline still
    shows every status."""
    hook = store_webhook(store)
    body = {"age": "7", "patient_identifier": {"system": MRN_SYSTEM, "value": "MRN-SHAPE-1"}}
    handle = await start(temporal_client, settings, hook, body)
    state = await handle.result()
    assert state.status == RequestStatus.SUCCESS
    kinds: list[str] = []
    upserted: list[set[str]] = []
    async for event in handle.fetch_history_events():
        kinds.append(EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"))
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            upserted.append(set(fields.indexed_fields))
    assert kinds.count("MARKER_RECORDED") == 3
    assert kinds.count("ACTIVITY_TASK_SCHEDULED") == 0
    assert kinds.count("WORKFLOW_TASK_COMPLETED") == 1
    assert kinds.count("WORKFLOW_PROPERTIES_MODIFIED") == 0
    assert len(upserted) == 1
    assert {"RequestStatus", "PatientId", "CareFlowId", "CareFlowDefinitionId"} <= upserted[0]
    assert len(kinds) == 9
    assert [entry.status for entry in state.timeline] == [
        RequestStatus.RECEIVED,
        RequestStatus.SCHEDULED,
        RequestStatus.PROCESSING,
        RequestStatus.SUCCESS,
    ]


async def test_unpublished_definition_fails_for_good(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store, published=False)
    handle = await start(temporal_client, settings, hook, {"age": 3})
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.FAILED
    assert description.typed_search_attributes.get(temporal.SA_REQUEST_STATUS) == "FAILED"
    memo = await description.memo_value(temporal.MEMO_STATE)
    assert memo["errors"][0]["code"] == "care_flow_definition_unpublished"
    assert memo["timeline"][-1] == {
        "status": "FAILED",
        "at": memo["timeline"][-1]["at"],
        "message": "start_care_flow: care_flow_definition_unpublished",
    }


async def test_handler_rejection_stays_on_first_run_and_reset_revalidates(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store)
    errors = [
        RequestError(
            code="missing_required_data_point", message="m", data_point_definition_id="age"
        )
    ]
    handle = await start(
        temporal_client,
        settings,
        hook,
        {"age": 5},
        handler_status=RequestStatus.REJECTED,
        handler_errors=errors,
        handler_data_points={"age": 5},
    )
    state = await handle.query(temporal.STATUS_QUERY, result_type=RequestState)
    assert (await handle.result()).status == RequestStatus.REJECTED
    assert state.data_points == {"age": 5}  # the handler's mapping, not validated again
    assert await activities_scheduled(handle) == []
    first_run = (await handle.describe()).run_id
    # A reset to the first workflow task (what the UI's Reset does) re-validates.
    await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution={"workflow_id": handle.id, "run_id": first_run},
            reason="test",
            workflow_task_finish_event_id=3,
            request_id=str(uuid.uuid4()),
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )
    latest = temporal_client.get_workflow_handle(handle.id, result_type=RequestState)
    state = await latest.result()
    assert state.status == RequestStatus.SUCCESS
    assert (await latest.describe()).run_id != first_run


async def test_test_request_is_never_processed(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store, enabled=False)
    handle = await start(temporal_client, settings, hook, {"age": 5}, is_test=True)
    state = await handle.result()
    assert state.status == RequestStatus.TEST
    assert state.verdict == RequestStatus.SCHEDULED
    assert state.patient_id is None and state.care_flow_id is None
    assert store.patients.count_patients() == 0 and store.patients.count_care_flows() == 0


@pytest.mark.parametrize(("is_test", "status"), [(False, "REJECTED"), (True, "TEST")])
async def test_door_rejection_is_final_without_an_activity(
    temporal_client: Client,
    settings: Settings,
    store: Store,
    worker: RunningWorker,
    is_test: bool,
    status: str,
) -> None:
    hook = store_webhook(store)
    errors = [RequestError(code="payload_too_large", message="m")]
    handle = await start(
        temporal_client,
        settings,
        hook,
        None,
        handler_status=RequestStatus.REJECTED,
        handler_errors=errors,
        door_rejected=True,
        is_test=is_test,
    )
    state = await handle.result()
    assert (state.status, state.verdict) == (RequestStatus(status), RequestStatus.REJECTED)
    assert state.errors == errors
    assert [t.message for t in state.timeline] == [None, "payload_too_large"]
    assert await activities_scheduled(handle) == []
    description = await handle.describe()
    assert description.typed_search_attributes.get(temporal.SA_REQUEST_STATUS) == status
