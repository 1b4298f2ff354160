"""The e2e reference is our workflow with no-op activities: the same history as the real one.

Both run on the session's Temporal dev server: the real workflow with the real worker (SQLite
store), the reference with ``bench/reference.py``'s activities, each started as ingest starts it.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.reference import ACTIVITIES, REFERENCE_WORKFLOW_TYPE, ReferenceWorkflow
from bench.starts import start_like_ingest
from careflow import request_ids
from careflow.messages import RequestState
from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store
from tests.conftest import RunningWorker
from tests.factories import MRN_SYSTEM, store_webhook
from workflows.request import WebhookRequestWorkflow

BODY = json.dumps({"age": "42", "patient_identifier": {"system": MRN_SYSTEM, "value": "MRN-7"}})


async def event_types(handle: WorkflowHandle[object, object]) -> Counter[str]:
    history = await handle.fetch_history()
    return Counter(EventType.Name(event.event_type) for event in history.events)


def statuses(state: RequestState) -> list[RequestStatus]:
    return [entry.status for entry in state.timeline]


def test_reference_runs_the_real_workflow_code() -> None:
    assert issubclass(ReferenceWorkflow, WebhookRequestWorkflow)
    # Nothing of the workflow is redefined but ``run``, which the SDK wants on the class.
    assert {name for name in vars(ReferenceWorkflow) if not name.startswith("__")} == {"run"}


async def test_reference_history_equals_the_real_workflows(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store)
    ours = await start_like_ingest(
        temporal_client,
        temporal.WORKFLOW_TYPE,
        request_id=request_ids.new_request_id(),
        webhook_id=hook.id,
        body=BODY.encode(),
        task_queue=settings.careflow_task_queue,
    )
    our_state = RequestState.model_validate(await ours.result())

    queue = f"{settings.careflow_task_queue}-reference"
    with ThreadPoolExecutor(max_workers=4) as executor:
        reference_worker = Worker(
            temporal_client,
            task_queue=queue,
            workflows=[ReferenceWorkflow],
            activities=ACTIVITIES,
            activity_executor=executor,
        )
        async with reference_worker:
            reference = await start_like_ingest(
                temporal_client,
                REFERENCE_WORKFLOW_TYPE,
                request_id=request_ids.new_request_id(),
                webhook_id=hook.id,
                body=BODY.encode(),
                task_queue=queue,
            )
            reference_state = RequestState.model_validate(await reference.result())

    assert our_state.status == reference_state.status == RequestStatus.SUCCESS
    assert statuses(our_state) == statuses(reference_state)
    assert reference_state.patient_id and reference_state.care_flow_id
    assert await event_types(ours) == await event_types(reference)
    described = await reference.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(temporal.SA_REQUEST_STATUS) == "SUCCESS"
    assert attributes.get(temporal.SA_CARE_FLOW_ID) == reference_state.care_flow_id
    # Both completed: the state is in the result, neither writes the memo.
    assert await described.memo() == await (await ours.describe()).memo() == {}
    assert set(our_state.model_dump(exclude_defaults=True)) == set(
        reference_state.model_dump(exclude_defaults=True)
    )
