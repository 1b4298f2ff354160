"""The request log: requests read back from Temporal (visibility, describe, query, history).

There is no second copy of requests in the app database: a request *is* its workflow execution,
so the log lives exactly as long as the namespace retention (contract §7).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from api import request_history as history
from api import request_runs as runs
from api.paging import PageTokens
from api.request_models import (
    RequestDetail,
    RequestFilters,
    RequestSummary,
    TemporalDetails,
    latest_runs_query,
    visibility_query,
)
from backends.temporal_workflow import is_temporal_care_flow_id
from careflow.errors import NotFoundError
from careflow.messages import RequestState, TimelineEntry
from careflow.models import RequestError, RequestStatus
from infra import temporal
from infra.codec import EncryptionKeyNotFound
from workflows.request import WebhookRequestWorkflow

QUERY_TIMEOUT = timedelta(milliseconds=500)


def _key_error(exc: EncryptionKeyNotFound) -> RequestError:
    return RequestError(code=exc.type or "encryption_key_not_found", message=exc.message)


_RETRYABLE_STATUSES = frozenset(
    {RequestStatus.FAILED, RequestStatus.REJECTED, RequestStatus.IGNORED}
)


def _sa(execution: WorkflowExecution, key: Any) -> Any:
    return execution.typed_search_attributes.get(key)


class RequestLog:
    """Reads requests from Temporal.

    Args:
        client: a Temporal client using the pydantic data converter.
        ui_base_url: the Temporal Web UI's base URL, for ``temporal.ui_url``.
        tokens: signs the list's page tokens.
    """

    def __init__(self, client: Client, ui_base_url: str, tokens: PageTokens) -> None:
        self._client = client
        self._ui_base_url = ui_base_url
        self._tokens = tokens

    def ui_url(self, workflow_id: str, run_id: str | None = None) -> str:
        url = f"{self._ui_base_url}/namespaces/{self._client.namespace}/workflows/{workflow_id}"
        return f"{url}/{run_id}/history" if run_id else url

    async def describe(self, request_id: str) -> WorkflowExecutionDescription:
        """The latest run of a request.

        Raises:
            NotFoundError: ``request_not_found``.
        """
        try:
            return await self._client.get_workflow_handle(request_id).describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise NotFoundError(
                    RequestError(code="request_not_found", message="request not found")
                ) from exc
            raise

    async def current_status(self, request_id: str) -> RequestStatus:
        """The status a request shows now (its search attribute), for duplicate answers."""
        description = await self.describe(request_id)
        value = _sa(description, temporal.SA_REQUEST_STATUS)
        return RequestStatus(value) if value else RequestStatus.RECEIVED

    async def get(self, request_id: str) -> RequestDetail:
        """Everything about one request (contract §4), answering even when no worker runs.

        The live state comes from the ``status`` query (1 s timeout) while the run is open, else
        from the memo or the run's result; the payload and mapped values come from the history.
        """
        description = await self.describe(request_id)
        handle = self._client.get_workflow_handle(request_id, run_id=description.run_id)
        state: RequestState | None = None
        if description.status == WorkflowExecutionStatus.RUNNING:
            try:
                state = await handle.query(WebhookRequestWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
            except Exception:  # no worker, or a slow one: fall back to the memo
                state = None
        undecodable: list[RequestError] = []  # a key missing from this API's ring
        if state is None:
            try:
                state = await runs.settled_state(self._client, description)
            except EncryptionKeyNotFound as exc:
                state, undecodable = None, [_key_error(exc)]
            state = state or RequestState(status=RequestStatus.RECEIVED)
        try:
            request, validation = await history.read(self._client, handle)
        except EncryptionKeyNotFound as exc:
            request, validation, undecodable = None, None, [_key_error(exc)]
        info = description.raw_description.workflow_execution_info
        first_run = not info.first_run_id or info.first_run_id == description.run_id
        state = history.known_state(state, request, validation, first_run=first_run)
        if not state.timeline and description.status == WorkflowExecutionStatus.FAILED:
            # The workflow failed before its first state write: a worker could not decode
            # the request (infra.codec.EncryptionKeyNotFound ends the execution, not a retry).
            failure = await history.execution_failure(self._client, handle)
            undecodable = undecodable or ([failure] if failure else [])
            state = state.model_copy(update={"status": RequestStatus.FAILED})
        if undecodable:
            state = state.model_copy(update={"errors": [*state.errors, *undecodable]})
        # As the run decided (workflows/request.py): only the built-in backend's calls were tried
        # once locally first; a remote backend's activities count their attempts from 1.
        local_first = (
            request is not None
            and request.local_first
            and validation is not None
            and validation.backend_kind == "builtin"
        )
        pending = history.pending_activities(description, local_first=local_first)
        timeline = list(state.timeline)
        for activity in pending:
            if activity.attempt > 1:
                timeline.append(
                    TimelineEntry(
                        status=state.status,
                        at=activity.last_attempt_at or description.start_time,
                        message=f"{activity.activity_type} attempt {activity.attempt} of "
                        f"{activity.maximum_attempts or 'unlimited'} pending"
                        + (
                            f"; last failure: {activity.last_failure}"
                            if activity.last_failure
                            else ""
                        ),
                    )
                )
        status_sa = _sa(description, temporal.SA_REQUEST_STATUS)
        if state.timeline or state.status == RequestStatus.FAILED:
            status = state.status
        elif first_run:
            status = RequestStatus(status_sa or "RECEIVED")
        else:  # a reset run keeps the old run's search attributes until its first workflow task
            status = RequestStatus.RECEIVED
        care_flow_id = state.care_flow_id or _sa(description, temporal.SA_CARE_FLOW_ID)
        latest_run = runs.RunSummary(
            run_id=description.run_id or "",
            status=status,
            execution_status=description.status.name if description.status else "UNKNOWN",
            started_at=description.start_time,
            closed_at=description.close_time,
            error_codes=sorted({e.code for e in state.errors}),
            ui_url=self.ui_url(request_id, description.run_id),
        )
        all_runs = [latest_run]
        if not first_run:  # earlier runs and what started each, oldest first
            earlier = await runs.earlier_runs(self._client, request_id, latest_run.run_id)
            all_runs = await runs.summarise(
                self._client, earlier, latest_run, await runs.reset_event(handle), self.ui_url
            )
            timeline = runs.joined_timeline(
                all_runs, [s.timeline if s else [] for _, s in earlier] + [timeline]
            )
        return RequestDetail(
            request_id=request_id,
            webhook_id=_sa(description, temporal.SA_WEBHOOK_ID),
            care_flow_definition_id=_sa(description, temporal.SA_CARE_FLOW_DEFINITION_ID),
            status=status,
            verdict=state.verdict,
            # The first receipt: a reset run's start time is when it was reset.
            received_at=request.received_at if request else description.start_time,
            updated_at=description.close_time or _last_update(state, description),
            is_test=bool(_sa(description, temporal.SA_IS_TEST)),
            payload=history.logged_payload(request),
            data_points=state.data_points,
            patient_identifier=state.patient_identifier,
            patient_id=state.patient_id or _sa(description, temporal.SA_PATIENT_ID),
            care_flow_id=care_flow_id,
            care_flow_ui_url=(
                self.ui_url(care_flow_id)
                if care_flow_id and is_temporal_care_flow_id(care_flow_id)
                else None
            ),
            errors=state.errors,
            reasons=state.reasons,
            timeline=timeline,
            pending_activities=pending,
            runs=all_runs,
            temporal=TemporalDetails(
                namespace=self._client.namespace,
                workflow_id=request_id,
                run_id=description.run_id,
                ui_url=self.ui_url(request_id, description.run_id),
            ),
        )

    async def _latest_runs(self, executions: list[WorkflowExecution]) -> list[WorkflowExecution]:
        """The executions that are their request's latest run, in the given order.

        A reset (API retry or the UI's Reset) starts a new run and leaves the earlier one in
        visibility, closed as it was (Failed, Completed) or Terminated; only one run of a
        request can be open, so open runs are always latest and closed ones are checked.
        """
        closed = {e.id for e in executions if e.status != WorkflowExecutionStatus.RUNNING}
        limiter = asyncio.Semaphore(20)

        async def latest(request_id: str) -> tuple[str, str | None]:
            async with limiter:
                try:
                    return request_id, (await self.describe(request_id)).run_id
                except NotFoundError:
                    return request_id, None

        latest_run = dict(await asyncio.gather(*(latest(i) for i in closed)))
        kept: list[WorkflowExecution] = []
        seen: set[str] = set()
        for execution in executions:
            if execution.id in seen:
                continue
            if execution.id in latest_run and latest_run[execution.id] != execution.run_id:
                continue
            seen.add(execution.id)
            kept.append(execution)
        return kept

    async def list(
        self, filters: RequestFilters, limit: int = 50, page_token: str | None = None
    ) -> tuple[list[RequestSummary], str | None]:
        """One row per request (its latest run), running first, then most recently closed
        (the order Temporal's SQL visibility gives); earlier runs left by resets are dropped,
        so a page may hold fewer than ``limit`` rows.
        """
        iterator = self._client.list_workflows(
            visibility_query(filters),
            page_size=limit,
            next_page_token=self._tokens.decode_visibility(page_token),
        )
        await iterator.fetch_next_page()
        items: list[RequestSummary] = []
        latest = await self._latest_runs(list(iterator.current_page or []))
        limiter = asyncio.Semaphore(20)

        async def receipt(execution: WorkflowExecution) -> datetime | None:
            async with limiter:
                return await _first_receipt(self._client, execution)

        receipts = await asyncio.gather(*(receipt(e) for e in latest))
        for execution, first_receipt in zip(latest, receipts, strict=True):
            status = _sa(execution, temporal.SA_REQUEST_STATUS)
            # The first receipt (settled state), not the run's start: a reset run starts when reset.
            received_at = first_receipt or execution.start_time
            items.append(
                RequestSummary(
                    request_id=execution.id,
                    webhook_id=_sa(execution, temporal.SA_WEBHOOK_ID),
                    care_flow_definition_id=_sa(execution, temporal.SA_CARE_FLOW_DEFINITION_ID),
                    status=RequestStatus(status) if status else RequestStatus.RECEIVED,
                    received_at=received_at,
                    updated_at=execution.close_time,
                    is_test=bool(_sa(execution, temporal.SA_IS_TEST)),
                    run_id=execution.run_id,
                )
            )
        return items, self._tokens.encode_visibility(iterator.next_page_token)

    def ui_list_url(self, run_ids: Sequence[str]) -> str:
        """The Temporal UI's workflow list showing exactly these runs (``latest_runs_query``)."""
        query = quote(latest_runs_query(run_ids))
        return f"{self._ui_base_url}/namespaces/{self._client.namespace}/workflows?query={query}"

    async def count(self, filters: RequestFilters, exact_up_to: int = 1000) -> int:
        """Requests matching ``filters`` (latest runs only).

        FAILED, REJECTED and IGNORED are the statuses that retries supersede: they are listed
        and de-duplicated (at most ``exact_up_to``); other statuses use one visibility count.
        """
        query = visibility_query(filters)
        if filters.status not in _RETRYABLE_STATUSES:
            return (await self._client.count_workflows(query)).count
        executions = [
            e async for e in self._client.list_workflows(query, limit=exact_up_to, page_size=200)
        ]
        return len(await self._latest_runs(executions))


async def _first_receipt(client: Client, execution: WorkflowExecution) -> datetime | None:
    """When a request first arrived: its timeline's receipt entry (settled state: memo or
    result), which a reset run replays from its input; None while the run is open."""
    try:
        state = await runs.settled_state(client, execution)
    except EncryptionKeyNotFound:  # a key this API lacks: the run's start time stands in
        return None
    if state and state.timeline and state.timeline[0].status == RequestStatus.RECEIVED:
        return state.timeline[0].at
    return None


def _last_update(state: RequestState, description: WorkflowExecutionDescription) -> datetime | None:
    return state.timeline[-1].at if state.timeline else description.start_time
