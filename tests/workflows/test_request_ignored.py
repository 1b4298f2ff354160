"""``WebhookRequestWorkflow`` and IGNORED: the status in the search attribute, the memo and the
timeline; nothing resolved or started (contract §3, §5b)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api import request_history
from careflow import request_ids
from careflow.conditions.models import ConditionGroup, IgnoredReason, RuleOutcome
from careflow.messages import RequestState, WebhookRequestInput
from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store
from tests.conftest import RunningWorker
from tests.factories import store_webhook


async def run_request(
    client: Client, settings: Settings, store: Store, body: object, **handler: Any
) -> tuple[RequestState, list[str], WorkflowExecutionDescription]:
    hook = store_webhook(store)
    conditions = ConditionGroup.model_validate(
        {"rules": [{"path": "$.kind", "op": "equals", "value": "intake"}]}
    )
    store.configuration.save_webhook(hook.model_copy(update={"conditions": conditions}))
    request_id = request_ids.new_request_id()
    handle = await client.start_workflow(
        temporal.WORKFLOW_TYPE,
        WebhookRequestInput(
            request_id=request_id,
            webhook_id=hook.id,
            care_flow_definition_id=hook.care_flow_definition_id,
            received_at=datetime.now(UTC),
            body=json.dumps(body).encode(),
            activity_max_attempts=2,
            activity_max_seconds=10,
            **handler,
        ),
        id=request_id,
        task_queue=settings.careflow_task_queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(temporal.SA_REQUEST_STATUS, "IGNORED")]
        ),
        result_type=RequestState,
    )
    state = await handle.result()
    activities = [  # local activities (validate_request) from their markers
        event.activity_task_scheduled_event_attributes.activity_type.name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        else str(request_history.local_activity_type(event))
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        or request_history.local_activity_type(event) is not None
    ]
    return state, activities, await handle.describe()


async def test_a_handler_ignored_request_stays_ignored_and_starts_nothing(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    reason = IgnoredReason(
        code="conditions_not_met",
        message="the webhook's conditions are not met",
        rules=[RuleOutcome(rule="1", path="$.kind", op="equals", outcome=False)],
    )
    # Even a body that meets the conditions now: the sender was answered IGNORED.
    state, activities, description = await run_request(
        temporal_client,
        settings,
        store,
        {"kind": "intake", "age": 4},
        handler_status=RequestStatus.IGNORED,
        handler_reasons=[reason],
    )
    assert state.status == RequestStatus.IGNORED and state.reasons == [reason]
    assert activities == []
    assert description.status == WorkflowExecutionStatus.COMPLETED
    attrs = description.typed_search_attributes
    assert attrs.get(temporal.SA_REQUEST_STATUS) == "IGNORED"
    memo = await description.memo_value(temporal.MEMO_STATE)
    assert memo["status"] == "IGNORED"
    assert memo["reasons"][0]["rules"][0] == {
        "rule": "1",
        "path": "$.kind",
        "op": "equals",
        "outcome": False,
        "note": None,
    }
    assert [t["status"] for t in memo["timeline"]] == ["RECEIVED", "IGNORED"]
    assert memo["timeline"][-1]["message"] == "conditions_not_met"
    assert store.patients.count_patients() == 0


async def test_validate_request_ignores_when_the_current_conditions_are_not_met(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    state, activities, description = await run_request(
        temporal_client,
        settings,
        store,
        {"kind": "follow-up", "age": 4},
        handler_status=RequestStatus.SCHEDULED,
    )
    assert state.status == RequestStatus.IGNORED
    assert state.verdict == RequestStatus.IGNORED
    assert state.reasons[0].code == "conditions_not_met"
    assert activities == [temporal.VALIDATE_REQUEST]
    memo = json.dumps(await description.memo())
    assert "follow-up" not in memo
    assert store.patients.count_patients() == 0
