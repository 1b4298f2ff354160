"""WebhookRequestWorkflow with a real worker per test on a unique task queue."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from careflow import request_ids
from careflow.messages import RequestState, WebhookRequestInput
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    IdentifierSystem,
    RequestError,
    RequestStatus,
    Webhook,
)
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store, new_webhook_id
from tests.conftest import RunningWorker

SYSTEM = "https://example-hospital.org/mrn"


def make_webhook(store: Store, *, published: bool = True, enabled: bool = True) -> Webhook:
    store.configuration.create_identifier_system(IdentifierSystem(name="mrn", system=SYSTEM))
    store.configuration.create_care_flow_definition(
        CareFlowDefinition(
            id="intake",
            title="Intake",
            published=published,
            data_point_definitions=[DataPointDefinition(id="age", value_type="number")],
        )
    )
    now = datetime.now(UTC)
    hook = Webhook(
        id=new_webhook_id(),
        name="Test hook",
        care_flow_definition_id="intake",
        data_point_mappings=[DataPointMapping(data_point_definition_id="age", path="$.age")],
        enabled=enabled,
        created_at=now,
        updated_at=now,
    )
    return store.configuration.insert_webhook(hook)


async def start(
    client: Client,
    settings: Settings,
    hook: Webhook,
    body: dict,
    *,
    handler_status: RequestStatus = RequestStatus.SCHEDULED,
    handler_errors: list[RequestError] | None = None,
    handler_data_points: dict | None = None,
    is_test: bool = False,
):  # type: ignore[no-untyped-def]
    request_id = request_ids.new_request_id(test=is_test)
    return await client.start_workflow(
        temporal.WORKFLOW_TYPE,
        WebhookRequestInput(
            request_id=request_id,
            webhook_id=hook.id,
            webhook_name=hook.name,
            care_flow_definition_id=hook.care_flow_definition_id,
            received_at=datetime.now(UTC),
            body=json.dumps(body).encode(),
            is_test=is_test,
            handler_status=handler_status,
            handler_errors=handler_errors or [],
            handler_data_points=handler_data_points or {},
            activity_max_attempts=2,
            activity_max_seconds=10,
        ),
        id=request_id,
        task_queue=settings.careflow_task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(temporal.SA_WEBHOOK_ID, hook.id),
                SearchAttributePair(temporal.SA_REQUEST_STATUS, "RECEIVED"),
                SearchAttributePair(temporal.SA_IS_TEST, is_test),
            ]
        ),
        result_type=RequestState,
    )


async def test_success_sets_search_attributes_and_phi_free_memo(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = make_webhook(store)
    body = {"age": "42", "patient_identifier": {"system": SYSTEM, "value": "MRN-SECRET-77"}}
    handle = await start(temporal_client, settings, hook, body)
    state = await handle.result()
    assert state.status == RequestStatus.SUCCESS
    assert state.data_points == {"age": 42}
    description = await handle.describe()
    attrs = description.typed_search_attributes
    assert attrs.get(temporal.SA_REQUEST_STATUS) == "SUCCESS"
    assert attrs.get(temporal.SA_PATIENT_ID) == state.patient_id
    assert attrs.get(temporal.SA_CARE_FLOW_ID) == state.care_flow_id
    assert attrs.get(temporal.SA_CARE_FLOW_DEFINITION_ID) == "intake"
    memo = json.dumps(await description.memo())
    assert "MRN-SECRET-77" not in memo
    assert '"age"' not in memo and '"data_points"' not in memo  # no mapped values in the memo
    assert "MRN-SECRET-77" not in handle.id
    query = await handle.query(temporal.STATUS_QUERY, result_type=RequestState)
    assert query.status == RequestStatus.SUCCESS


async def test_unpublished_definition_fails_for_good(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = make_webhook(store, published=False)
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
    hook = make_webhook(store)
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
    state = await handle.result()
    assert state.status == RequestStatus.REJECTED
    assert state.data_points == {"age": 5}  # the handler's mapping, not validated again
    scheduled = [
        event
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == []
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
    hook = make_webhook(store, enabled=False)
    handle = await start(temporal_client, settings, hook, {"age": 5}, is_test=True)
    state = await handle.result()
    assert state.status == RequestStatus.TEST
    assert state.verdict == RequestStatus.SCHEDULED
    assert state.patient_id is None and state.care_flow_id is None
    assert store.patients.count_patients() == 0 and store.patients.count_care_flows() == 0
