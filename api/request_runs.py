"""A request's runs: the first one and each one a retry or a reset started.

A retry (``POST …/retry``) and the Temporal UI's *Reset* both start a new run of the same
workflow id; the earlier run stays in visibility, closed as it ended. This module lists them,
says what started each (read from the run's reset event: its reason and base run) and joins
their timelines into one, oldest first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
)

from careflow.messages import RequestState, TimelineEntry
from careflow.models import RequestStatus
from infra import temporal
from infra.codec import EncryptionKeyNotFound

# The reason ``RequestRetry.retry`` gives Temporal's reset: how a retry is told from a UI Reset.
API_RETRY_REASON = "retry requested through the careflow-webhooks API"
_RESET_CAUSE = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW


class ResetEvent(BaseModel):
    """How a run began, when a reset began it: the reset's reason and the run it was reset from."""

    reason: str
    base_run_id: str
    at: datetime


class RunSummary(BaseModel):
    """One run of a request, oldest first in ``RequestDetail.runs``.

    ``started_by``: ``receipt`` (the first run), ``retry`` (the API's retry) or ``reset`` (a
    reset by anyone else, e.g. the Temporal UI, with the ``reason`` typed there);
    ``execution_status`` is Temporal's (``COMPLETED``, ``FAILED``, ``TERMINATED``, ``RUNNING``).
    """

    run_id: str
    status: RequestStatus
    execution_status: str
    started_at: datetime
    closed_at: datetime | None = None
    started_by: str = "receipt"
    reason: str | None = None
    error_codes: list[str] = Field(default_factory=list)
    ui_url: str


def reset_of(event: Any) -> ResetEvent | None:
    """The reset a history event records (the failed workflow task a reset writes), else None."""
    if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        return None
    failed = event.workflow_task_failed_event_attributes
    if failed.cause != _RESET_CAUSE:
        return None
    return ResetEvent(
        reason=failed.failure.message,
        base_run_id=failed.base_run_id,
        at=event.event_time.ToDatetime().replace(tzinfo=UTC),
    )


async def reset_event(handle: WorkflowHandle[Any, Any]) -> ResetEvent | None:
    """The reset that began this run, if a reset did: the last reset event of its history (a
    run reset from a run a reset began carries that earlier reset's event too)."""
    last = None
    async for event in handle.fetch_history_events():
        last = reset_of(event) or last
    return last


def _started_by(reset: ResetEvent | None) -> tuple[str, str | None]:
    if reset is None:
        return "receipt", None
    return ("retry" if reset.reason == API_RETRY_REASON else "reset"), reset.reason


async def settled_state(client: Client, execution: WorkflowExecution) -> RequestState | None:
    """A closed run's settled state (PHI-free: no data points, no identifier).

    From its memo when it has one (a run that ended Failed, or one started before issue 19's
    second part, which wrote it at every settle), else from its result in the completion event
    (``WebhookRequestWorkflow`` returns its state; one history read of the close event only).

    Returns:
        The state, or None for an open run, or a closed one that recorded neither.

    Raises:
        infra.codec.EncryptionKeyNotFound: the memo or result is under a key this API lacks.
    """
    memo = await execution.memo_value(temporal.MEMO_STATE, default=None)
    if memo:
        return RequestState.model_validate(memo)
    if execution.status != WorkflowExecutionStatus.COMPLETED:
        return None
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    close = WorkflowHistoryEventFilterType.CLOSE_EVENT
    async for event in handle.fetch_history_events(event_filter_type=close):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            if payloads:
                [state] = await client.data_converter.decode(payloads, [RequestState])
                return state
    return None


async def earlier_runs(
    client: Client, request_id: str, latest_run_id: str
) -> list[tuple[WorkflowExecution, RequestState | None]]:
    """The runs before ``latest_run_id`` with their settled state (memo or result), oldest
    first (from visibility)."""
    query = f"WorkflowId = '{request_id}' AND WorkflowType = '{temporal.WORKFLOW_TYPE}'"
    runs = [e async for e in client.list_workflows(query) if e.run_id != latest_run_id]
    runs.sort(key=lambda e: e.start_time)
    found = []
    for execution in runs:
        try:
            state = await settled_state(client, execution)
        except EncryptionKeyNotFound:  # a key this API lacks: the run without its state
            state = None
        found.append((execution, state))
    return found


async def summarise(
    client: Client,
    earlier: list[tuple[WorkflowExecution, RequestState | None]],
    latest: RunSummary,
    latest_reset: ResetEvent | None,
    ui_url: Any,
) -> list[RunSummary]:
    """Every run, oldest first: the earlier ones from visibility and their resets, then ``latest``.

    Args:
        client: the Temporal client (reads each earlier run's history for its reset event).
        earlier: ``earlier_runs``' answer.
        latest: the latest run, without ``started_by`` (filled here from ``latest_reset``).
        latest_reset: the reset event of the latest run, if any.
        ui_url: ``(workflow_id, run_id) -> str``, the Temporal UI link of a run.
    """
    runs = []
    for execution, state in earlier:
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        started_by, reason = _started_by(await reset_event(handle))
        runs.append(
            RunSummary(
                run_id=execution.run_id,
                status=state.status if state else RequestStatus.RECEIVED,
                execution_status=execution.status.name if execution.status else "UNKNOWN",
                started_at=execution.start_time,
                closed_at=execution.close_time,
                started_by=started_by,
                reason=reason,
                error_codes=sorted({e.code for e in state.errors}) if state else [],
                ui_url=ui_url(execution.id, execution.run_id),
            )
        )
    started_by, reason = _started_by(latest_reset)
    runs.append(latest.model_copy(update={"started_by": started_by, "reason": reason}))
    return runs


def joined_timeline(
    runs: list[RunSummary],
    timelines: list[list[TimelineEntry]],
) -> list[TimelineEntry]:
    """One timeline for every run, oldest first: each later run opens with what started it
    (retry or reset, with its reason) and drops the receipt entry it replays.

    Args:
        runs: ``summarise``' answer.
        timelines: each run's own timeline, in the same order.
    """
    joined: list[TimelineEntry] = []
    for number, (run, timeline) in enumerate(zip(runs, timelines, strict=True), start=1):
        entries = list(timeline)
        if number > 1:
            what = "retried through the API" if run.started_by == "retry" else "reset"
            ended = runs[number - 2]
            codes = f" ({', '.join(ended.error_codes)})" if ended.error_codes else ""
            message = (
                f"run {number - 1} ended {ended.status.value}{codes}; {what}"
                + (f" ({run.reason})" if run.started_by == "reset" and run.reason else "")
                + f": run {number} started"
            )
            joined.append(
                TimelineEntry(status=RequestStatus.RECEIVED, at=run.started_at, message=message)
            )
            if entries and entries[0].status == RequestStatus.RECEIVED and not entries[0].message:
                entries = entries[1:]  # the receipt the reset run replays
        joined.extend(entries)
    return joined
