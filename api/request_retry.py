"""Retries of requests (contract §3): one request reset to its first workflow task, or every
retryable request matching the list's filters.

A retry is Temporal's reset of the request's latest run; the app database holds the claims
that let exactly one of several concurrent retries of a run reset it.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from temporalio.api.common.v1 import WorkflowExecution as ProtoWorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus

from api import request_history as history
from api import request_runs as runs
from api.request_log import RequestLog
from api.request_models import BulkRetryAnswer, RequestFilters, RetryAnswer, visibility_query
from careflow.errors import ConflictError
from careflow.models import RequestError, RequestStatus
from infra import temporal
from infra.codec import EncryptionKeyNotFound
from persistence.repositories.retry_claims import RetryClaimRepository

# Rejected at the door (contract §3): retrying would replay the same refusal.
DOOR_CODES = frozenset(
    {
        "invalid_signature",
        "payload_too_large",
        "unsupported_media_type",
        "invalid_json",
        "empty_body",
        "nesting_too_deep",
        "non_finite_number",
        "duplicate_header",
        "too_many_nodes",
        "request_timeout",
    }
)

_WHY_NOT = {
    "test_request": "test requests are never processed",
    "succeeded": "the request succeeded",
    "not_finished": "the request has not finished",
    "rejected_at_door": "the request was refused at the door (signature, size, media type, syntax)",
    "encryption_key_not_found": "its reasons are encrypted under a key this API does not have",
}


class NotRetryableError(ConflictError):
    """409 ``not_retryable``; ``reason`` says why (a snake_case code counted by bulk retry)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(RequestError(code="not_retryable", message=message))
        self.reason = reason


class RequestRetry:
    """Resets requests that may be retried, once per run across API replicas.

    Args:
        client: a Temporal client using the pydantic data converter.
        log: the request log, to describe a request's latest run.
        claims: the retry claims in the app database (one retry of a run wins).
    """

    def __init__(self, client: Client, log: RequestLog, claims: RetryClaimRepository) -> None:
        self._client = client
        self._log = log
        self._claims = claims

    async def retryable(self, request_id: str) -> bool:
        """Whether ``retry`` would reset this request now (contract §3)."""
        description = await self._log.describe(request_id)
        return (await _retryable_run(self._client, description))[0] is not None

    async def retry(self, request_id: str, arrived: datetime | None = None) -> RetryAnswer:
        """Reset a retryable request to its first workflow task (the UI's Reset), so it
        re-validates against the current configuration; the reset starts a new run.

        Of concurrent retries of one request exactly one resets it, on any API replica: the
        winner claims (request id, latest run id) in the app database before resetting; the
        others find the claim taken, find that the reset's new run was open when they arrived
        (``arrived``, default now; it may have ended since), or find a claim made after they
        arrived, and get ``retry_in_progress``.

        Raises:
            NotFoundError: ``request_not_found``.
            ConflictError: ``not_retryable`` (door rejections, TEST, not terminal, SUCCESS);
                ``retry_in_progress`` (another retry of this request won).
        """
        arrived = arrived or datetime.now(UTC)
        description = await self._log.describe(request_id)
        if _reset_run_open(description, arrived):
            raise ConflictError(_RETRY_IN_PROGRESS)
        run_id, reason = await _retryable_run(self._client, description)
        if run_id is None:
            raise NotRetryableError(
                reason,
                f"{_WHY_NOT[reason]}; only FAILED and IGNORED requests and REJECTED ones with "
                "payload or configuration errors can be retried",
            )
        if not await asyncio.to_thread(self._claims.claim, request_id, run_id, arrived):
            raise ConflictError(_RETRY_IN_PROGRESS)
        try:
            return await self._reset(request_id, run_id)
        except BaseException:
            await asyncio.to_thread(self._claims.release, request_id, run_id)
            raise

    async def _reset(self, request_id: str, run_id: str) -> RetryAnswer:
        handle = self._client.get_workflow_handle(request_id, run_id=run_id)
        first_task = await history.first_workflow_task(handle)
        if first_task is None:
            raise NotRetryableError("no_completed_task", "the request has no completed task")
        # Same run → same reset request id: concurrent retries of one run reset it once.
        reset_request_id = hashlib.sha256(f"{request_id}/{run_id}".encode()).hexdigest()
        answer = await self._client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=self._client.namespace,
                workflow_execution=ProtoWorkflowExecution(workflow_id=request_id, run_id=run_id),
                reason=runs.API_RETRY_REASON,
                workflow_task_finish_event_id=first_task,
                request_id=reset_request_id,
                reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
            )
        )
        return RetryAnswer(
            request_id=request_id, run_id=answer.run_id, status=RequestStatus.RECEIVED
        )

    async def retry_many(
        self, filters: RequestFilters, limit: int, arrived: datetime | None = None
    ) -> BulkRetryAnswer:
        """Reset every retryable request matching ``filters`` (at most ``limit`` looked at);
        skipped ones are counted by reason (``succeeded``, ``not_finished``, ``test_request``,
        ``rejected_at_door``, ``retry_in_progress``, …): a status filter also matches earlier
        runs that a retry already superseded, whose request may since have succeeded."""
        reset = 0
        skipped: dict[str, int] = {}
        arrived = arrived or datetime.now(UTC)
        seen: set[str] = set()
        async for execution in self._client.list_workflows(
            visibility_query(filters), limit=limit, page_size=min(limit, 200)
        ):
            if execution.id in seen:
                continue
            seen.add(execution.id)
            try:
                await self.retry(execution.id, arrived)
                reset += 1
            except ConflictError as exc:
                reason = getattr(exc, "reason", None) or exc.errors[0].code
                skipped[reason] = skipped.get(reason, 0) + 1
        return BulkRetryAnswer(
            reset=reset, skipped=sum(skipped.values()), skipped_by_reason=skipped
        )


_RETRY_IN_PROGRESS = RequestError(
    code="retry_in_progress", message="another retry of this request is in progress"
)


async def _retryable_run(
    client: Client, description: WorkflowExecutionDescription
) -> tuple[str | None, str]:
    """The run id of ``description`` when it may be retried (contract §3), else None, with the
    reason code it may not (``""`` when it may)."""
    if description.typed_search_attributes.get(temporal.SA_IS_TEST):
        return None, "test_request"
    # An open run is never reset (that would terminate it). A reset run keeps the old run's
    # search attributes (FAILED) until its first workflow task, so the state is checked too.
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None, "not_finished"
    status = description.typed_search_attributes.get(temporal.SA_REQUEST_STATUS)
    if status in (RequestStatus.FAILED.value, RequestStatus.IGNORED.value):
        return description.run_id, ""
    if description.status == WorkflowExecutionStatus.FAILED:  # failed before writing status
        return description.run_id, ""
    if status == RequestStatus.SUCCESS.value:
        return None, "succeeded"
    if status != RequestStatus.REJECTED.value:
        return None, "not_finished"
    try:  # the memo, or the result of a run that completed (issue 19)
        state = await runs.settled_state(client, description)
    except EncryptionKeyNotFound:  # its reasons cannot be read here: not retried blindly
        return None, "encryption_key_not_found"
    codes = {e.code for e in state.errors} if state else set()
    if not codes or codes & DOOR_CODES:
        return None, "rejected_at_door"
    return description.run_id, ""


def _reset_run_open(description: WorkflowExecutionDescription, at: datetime) -> bool:
    """Whether the latest run is a retry's (reset's) run that had not finished at ``at`` (when
    the asking retry arrived): a retry that arrived while another retry's run was open is
    concurrent with it, even when a busy API reaches it only after that run has ended."""
    info = description.raw_description.workflow_execution_info
    reset_run = bool(info.first_run_id) and info.first_run_id != description.run_id
    if not reset_run:
        return False
    if description.status == WorkflowExecutionStatus.RUNNING:
        return True
    return description.close_time is not None and description.close_time > at
