"""Replay safety of ``WebhookRequestWorkflow`` across its shape changes (issue 19).

Runs started before the second change wrote the settled state to the memo at every settle (a
``WORKFLOW_PROPERTIES_MODIFIED`` event); runs started since write it only when they fail. Runs
started before the third scheduled ``resolve_patient`` and ``start_care_flow`` as activities;
runs started since try each once as a local activity first. The workflow tells the shapes apart
by its input (``WebhookRequestInput.memo_on_completion``, absent — so True — and
``local_first``, absent — so False — in inputs started before), with no patch marker (which
would cost an event per request).
The stored histories were recorded from the workflow code at commit c31cedc (the shape before),
encrypted with the tests' key ring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import codec, temporal
from persistence.store import Store
from tests.conftest import TEST_RING, RunningWorker
from tests.factories import MRN_SYSTEM, start_request, store_webhook
from workflows.request import WebhookRequestWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "fixtures" / "histories"


def replayer() -> Replayer:
    return Replayer(
        workflows=[WebhookRequestWorkflow], data_converter=codec.data_converter(TEST_RING)
    )


def stored(name: str) -> WorkflowHistory:
    text = (HISTORIES / name).read_text()
    return WorkflowHistory.from_json("stored-" + name, json.loads(text))


def kinds(history: WorkflowHistory) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]


async def test_histories_of_the_shape_before_replay() -> None:
    success = stored("request-success-c31cedc.json")
    assert kinds(success).count("WORKFLOW_PROPERTIES_MODIFIED") == 1 and len(kinds(success)) == 21
    for history in (success, stored("request-rejected-c31cedc.json")):
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


async def test_each_shape_writes_its_memo_and_replays(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store)
    body: dict[str, Any] = {"age": "7", "patient_identifier": {"system": MRN_SYSTEM, "value": "R1"}}
    queue = settings.careflow_task_queue
    before = await start_request(
        temporal_client, queue, hook, body, memo_on_completion=True, local_first=False
    )
    between = await start_request(temporal_client, queue, hook, body, local_first=False)
    now = await start_request(temporal_client, queue, hook, body)
    for handle in (before, between, now):
        assert (await handle.result()).status == RequestStatus.SUCCESS
    assert (await (await before.describe()).memo_value(temporal.MEMO_STATE))["status"] == "SUCCESS"
    assert await (await between.describe()).memo() == {}
    assert await (await now.describe()).memo() == {}
    histories = [await h.fetch_history() for h in (before, between, now)]
    assert [len(h.events) for h in histories] == [21, 20, 9]
    for history in histories:
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
