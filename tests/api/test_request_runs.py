"""``api/request_runs.py``: after a retry or a reset, a request's detail keeps the earlier runs
(status, error codes, when, what started the next run and why); ``received_at`` stays the first
receipt; each timeline message is true to its run (issue 17, point 7)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import WorkflowExecution as ProtoWorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from api import request_history
from api.request_models import latest_runs_query
from api.request_runs import RunSummary, joined_timeline
from careflow.messages import TimelineEntry
from careflow.models import RequestStatus
from tests.conftest import Api, RunningWorker
from tests.factories import open_webhook, save_definition, unpublish

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPEN_POINTS = [{"id": "anything", "value_type": "json", "optional": True}]


def _run(run_id: str, status: str, minutes: int, **fields: object) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        status=RequestStatus(status),
        execution_status="FAILED",
        started_at=T0 + timedelta(minutes=minutes),
        ui_url=f"http://ui/{run_id}",
        **fields,  # type: ignore[arg-type]
    )


def test_joined_timeline_marks_each_later_run_and_drops_its_replayed_receipt() -> None:
    runs = [
        _run("r1", "FAILED", 0, error_codes=["care_flow_definition_unpublished"]),
        _run("r2", "FAILED", 5, started_by="retry"),
        _run("r3", "SUCCESS", 9, started_by="reset", reason="fixed the definition"),
    ]
    receipt = TimelineEntry(status=RequestStatus.RECEIVED, at=T0)
    failed = TimelineEntry(status=RequestStatus.FAILED, at=T0 + timedelta(minutes=1))
    success = TimelineEntry(status=RequestStatus.SUCCESS, at=T0 + timedelta(minutes=9))
    joined = joined_timeline(runs, [[receipt, failed], [receipt, failed], [receipt, success]])
    assert [(e.status.value, e.message) for e in joined] == [
        ("RECEIVED", None),
        ("FAILED", None),
        (
            "RECEIVED",
            "run 1 ended FAILED (care_flow_definition_unpublished); "
            "retried through the API: run 2 started",
        ),
        ("FAILED", None),
        ("RECEIVED", "run 2 ended FAILED; reset (fixed the definition): run 3 started"),
        ("SUCCESS", None),
    ]


async def _failed_anonymous_request(api: Api, worker: RunningWorker) -> tuple[str, str]:
    """A request of a webhook without identifier mapping (anonymous patient) that FAILED at
    ``start_care_flow``: accepted while no worker ran, then its definition was unpublished with
    ``?force=true``; the definition is published and the webhook enabled again afterwards."""
    hook_id = await open_webhook(api)
    await worker.stop()
    answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    await unpublish(api, "open", "Open", OPEN_POINTS)
    await worker.start()
    await api.wait_status(request_id, {"FAILED"})
    await save_definition(api, "open", OPEN_POINTS, title="Open", published=True, replace=True)
    enabled = await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")
    assert enabled.status_code == 200, enabled.text
    return hook_id, request_id


async def test_retry_keeps_earlier_run_and_first_receipt(api: Api, worker: RunningWorker) -> None:
    hook_id, request_id = await _failed_anonymous_request(api, worker)
    failed = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    await asyncio.sleep(1.1)  # so that a reset run's start time differs from the receipt
    retried = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert retried.status_code == 202, retried.text
    done = await api.wait_status(request_id, {"SUCCESS"})

    assert done["received_at"] == failed["received_at"]
    listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook_id}")).json()["items"]
    assert [(r["request_id"], r["received_at"]) for r in listed] == [
        (request_id, failed["received_at"])
    ]
    assert [(r["started_by"], r["status"], r["error_codes"]) for r in done["runs"]] == [
        ("receipt", "FAILED", ["care_flow_definition_unpublished"]),
        ("retry", "SUCCESS", []),
    ]
    assert done["runs"][0]["run_id"] == failed["temporal"]["run_id"]
    assert done["runs"][0]["ui_url"].endswith(f"/{failed['temporal']['run_id']}/history")
    assert done["runs"][1]["run_id"] == done["temporal"]["run_id"]
    messages = [(t["status"], t["message"]) for t in done["timeline"]]
    assert messages[0] == ("RECEIVED", None)
    assert ("PROCESSING", "anonymous patient created; resolve_patient succeeded on attempt 1") in (
        messages
    )
    marker = messages.index(
        (
            "RECEIVED",
            "run 1 ended FAILED (care_flow_definition_unpublished); retried through the API: "
            "run 2 started",
        )
    )
    # The second run reused the patient the first one created, and says so.
    assert ("PROCESSING", "anonymous patient reused; resolve_patient succeeded on attempt 1") in (
        messages[marker:]
    )
    assert messages[-1][0] == "SUCCESS"
    assert [m for m in messages if m[0] == "RECEIVED"] == [messages[0], messages[marker]]
    assert [m[0] for m in messages[marker:]].count("PROCESSING") == 1


async def test_ui_reset_is_told_from_a_retry(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    _, request_id = await _failed_anonymous_request(api, worker)
    failed = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    run_id = failed["temporal"]["run_id"]
    handle = temporal_client.get_workflow_handle(request_id, run_id=run_id)
    # What the Temporal UI's Reset dialog does with "4 - WorkflowTaskCompleted" and a reason.
    first_task = await request_history.first_workflow_task(handle)
    assert first_task == 4
    await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution=ProtoWorkflowExecution(workflow_id=request_id, run_id=run_id),
            reason="definition published",
            workflow_task_finish_event_id=first_task,
            request_id="ui-reset-1",
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )
    done = await api.wait_status(request_id, {"SUCCESS"})
    assert [(r["started_by"], r["reason"]) for r in done["runs"]] == [
        ("receipt", None),
        ("reset", "definition published"),
    ]
    assert any(
        t["message"] == "run 1 ended FAILED (care_flow_definition_unpublished); reset "
        "(definition published): run 2 started"
        for t in done["timeline"]
    )
    assert done["received_at"] == failed["received_at"]


async def test_temporal_ui_lists_superseded_runs_unless_runs_are_named(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    """What an operator sees in the Temporal UI (point 8), checked against real visibility."""
    hook_id, request_id = await _failed_anonymous_request(api, worker)
    await api.admin("POST", f"/v1/requests/{request_id}/retry")
    done = await api.wait_status(request_id, {"SUCCESS"})
    old_run, new_run = (r["run_id"] for r in done["runs"])

    async def runs(query: str) -> list[str]:
        return [e.run_id async for e in temporal_client.list_workflows(query)]

    scope = f"WebhookId = '{hook_id}'"
    # The superseded run keeps matching the status filter, and it is not Terminated.
    assert await runs(f"{scope} AND RequestStatus = 'FAILED'") == [old_run]
    assert await runs(f"{scope} AND RequestStatus = 'FAILED' AND ExecutionStatus != 'Terminated'")
    # The Logs page's "Open in Temporal UI" link names the latest runs: exactly those.
    listed = (await api.admin("GET", f"/v1/requests?webhook_id={hook_id}")).json()["items"]
    assert [r["run_id"] for r in listed] == [new_run]

    assert await runs(latest_runs_query([new_run])) == [new_run]
    # Describe still links the superseded run to its successor (the UI's run page shows it).
    old = await temporal_client.get_workflow_handle(request_id, run_id=old_run).describe()
    assert old.raw_description.workflow_extended_info.reset_run_id == new_run


async def test_a_retry_after_a_ui_reset_is_told_as_the_retry(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    """Run 2 began with a UI reset; run 3, reset from run 2 by the API's retry, carries run 2's
    reset event in its history too: what started run 3 is its own (last) reset event."""
    hook_id, request_id = await _failed_anonymous_request(api, worker)
    await unpublish(api, "open", "Open", OPEN_POINTS)
    failed = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    run_id = failed["temporal"]["run_id"]
    handle = temporal_client.get_workflow_handle(request_id, run_id=run_id)
    await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution=ProtoWorkflowExecution(workflow_id=request_id, run_id=run_id),
            reason="tried again",
            workflow_task_finish_event_id=await request_history.first_workflow_task(handle),
            request_id="ui-reset-2",
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )
    for _ in range(300):
        detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
        if len(detail["runs"]) == 2 and detail["status"] in {"FAILED", "REJECTED"}:
            break
        await asyncio.sleep(0.2)
    await save_definition(api, "open", OPEN_POINTS, title="Open", published=True, replace=True)
    assert (await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")).status_code == 200
    retried = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert retried.status_code == 202, retried.text
    done = await api.wait_status(request_id, {"SUCCESS"})
    assert [(r["started_by"], r["reason"], r["status"]) for r in done["runs"]] == [
        ("receipt", None, "FAILED"),
        ("reset", "tried again", "REJECTED"),  # validated against the unpublished definition
        ("retry", "retry requested through the careflow-webhooks API", "SUCCESS"),
    ]
    markers = [t["message"] for t in done["timeline"] if (t["message"] or "").startswith("run ")]
    assert len(markers) == 2, markers
    assert markers[0].endswith("; reset (tried again): run 2 started"), markers
    assert markers[1].startswith("run 2 ended REJECTED"), markers
    assert markers[1].endswith("; retried through the API: run 3 started"), markers
