"""The temporal care-flow backend: a care flow is a workflow the user runs on their own worker.

``start_care_flow`` starts the definition's ``workflow_type`` on its ``task_queue`` with one
input (``careflow.messages.CareFlowWorkflowInput``) through the service's own client, so the
data converter (and its payload codec) applies. Patients live in the built-in store.

Workflow id: ``care-flow-<request_id>``. Started with conflict policy USE_EXISTING and reuse
policy REJECT_DUPLICATE: a retry or reset while the care flow runs attaches to it, and one
after it closed gets ``WorkflowAlreadyStartedError``, which means "already started" — so a
request never has two care-flow executions (for as long as the namespace keeps closed runs,
the same retention as the request itself).

One exception: an existing execution that never completed a workflow task and never will —
terminated or timed out before any worker ran it, or waiting on a workflow type / task queue
the definition no longer names (the operator fixed a typo and retried the request) — is
replaced (conflict policy TERMINATE_EXISTING, reuse ALLOW_DUPLICATE): nothing of it ran.

A start succeeds even when no worker serves the workflow type; so, after starting,
``start_care_flow`` waits up to ``care_flow_pickup_seconds`` for the first workflow task to be
completed and otherwise raises a retryable ``care_flow_not_picked_up`` (Temporal retries the
activity within the request's bounds; every retry attaches to the same execution).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from backends.base import BackendRefusedError, BackendUnavailableError
from backends.builtin import BuiltinBackend
from backends.loop import LoopRunner
from careflow.answers import CareFlow, Patient
from careflow.errors import NotFoundError, TransientStoreError
from careflow.messages import CareFlowWorkflowInput
from careflow.models import Identifier, TemporalBackendConfig
from infra import temporal
from infra.codec import EncryptionKeyNotFound
from persistence.store import Store

log = logging.getLogger(__name__)

CARE_FLOW_ID_PREFIX = "care-flow-"
MEMO_KEY = "careflow"
_POLL_SECONDS = 0.2


def care_flow_workflow_id(request_id: str) -> str:
    """The workflow id (= care flow id) of a request's care flow: no PHI, one per request."""
    return CARE_FLOW_ID_PREFIX + request_id


def is_temporal_care_flow_id(care_flow_id: str) -> bool:
    return care_flow_id.startswith(CARE_FLOW_ID_PREFIX)


class CareFlowNotPickedUpError(BackendUnavailableError):
    """The care flow started but no worker completed its first workflow task in time.

    Args:
        workflow_type / task_queue: what was started where (configuration, not PHI).
        seconds: how long it waited.
    """

    def __init__(self, workflow_type: str, task_queue: str, seconds: float) -> None:
        message = (
            f"no worker ran workflow type {workflow_type} on task queue {task_queue} "
            f"within {seconds:g} s of its start"
        )
        super().__init__(message, code="care_flow_not_picked_up", public_message=message)


class TemporalWorkflowBackend:
    """``CareFlowBackend`` starting the user's workflows.

    Args:
        store: the built-in store (patients, definitions).
        client: the service's Temporal client (its data converter carries the input).
        runner: runs the client's coroutines on its event loop.
        pickup_seconds: how long to wait for the first workflow task to be completed.
    """

    def __init__(
        self, store: Store, client: Client, runner: LoopRunner, pickup_seconds: float = 5.0
    ) -> None:
        self._store = store
        self._builtin = BuiltinBackend(store)
        self._client = client
        self._runner = runner
        self._pickup_seconds = pickup_seconds

    def find_patient(self, identifier: Identifier) -> Patient | None:
        return self._builtin.find_patient(identifier)

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        return self._builtin.create_patient(identifier, profile, idempotency_key)

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        """Start (or attach to) the request's care-flow workflow and wait until it is picked up.

        Raises:
            BackendRefusedError: unknown or unpublished definition, not a temporal definition,
                unknown patient.
            BackendUnavailableError: Temporal unreachable; ``CareFlowNotPickedUpError`` when
                no worker ran the first workflow task within ``pickup_seconds``.
        """
        try:
            definition = self._store.configuration.get_care_flow_definition(care_flow_definition_id)
            patient = self._store.patients.get_patient(patient_id)
        except NotFoundError as exc:
            error = exc.errors[0]
            raise BackendRefusedError(error.code, error.message) from None
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        if not definition.published:
            raise BackendRefusedError(
                "care_flow_definition_unpublished", "the care flow definition is not published"
            )
        config = definition.backend
        if not isinstance(config, TemporalBackendConfig):
            raise BackendRefusedError(
                "care_flow_backend_mismatch", "the care flow definition's backend is not temporal"
            )
        argument = CareFlowWorkflowInput(
            request_id=idempotency_key,
            care_flow_definition_id=care_flow_definition_id,
            patient_id=patient_id,
            patient_identifier=patient.identifiers[0] if patient.identifiers else None,
            data_points=data_points,
        )
        try:
            return self._runner.run(
                self._start(config, argument), timeout=self._pickup_seconds + 20
            )
        except RPCError as exc:
            # Codes and the RPC status only: the server's message never quotes inputs, but keep
            # the rule simple.
            raise BackendUnavailableError(f"Temporal answered {exc.status.name}") from None
        except TimeoutError:
            raise BackendUnavailableError("Temporal did not answer in time") from None

    async def _start(
        self, config: TemporalBackendConfig, argument: CareFlowWorkflowInput
    ) -> tuple[CareFlow, bool]:
        workflow_id = care_flow_workflow_id(argument.request_id)
        created = await self._start_once(config, argument, replace_stale=False)
        if not created and await self._stale(workflow_id, config):
            # The existing execution never ran a workflow task and now cannot (terminated, or
            # waiting on a type/task queue the definition no longer names): nothing of it ran,
            # so replacing it starts the request's care flow once, where it is now configured.
            log.info("care flow %s never ran; starting it again", workflow_id)
            created = await self._start_once(config, argument, replace_stale=True)
        handle = self._client.get_workflow_handle(workflow_id)
        description = await self._wait_picked_up(handle.describe, config)
        return (
            CareFlow(
                id=workflow_id,
                care_flow_definition_id=argument.care_flow_definition_id,
                patient_id=argument.patient_id,
                data_points=argument.data_points,
                request_id=argument.request_id,
                started_at=description.start_time or datetime.now(UTC),
                backend="temporal",
                status=description.status.name if description.status else None,
            ),
            created,
        )

    async def _stale(self, workflow_id: str, config: TemporalBackendConfig) -> bool:
        """Whether the request's existing care-flow execution never completed a workflow task
        and never will: closed (terminated, timed out), or running on another workflow type or
        task queue than the definition now names."""
        handle = self._client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            queue = description.raw_description.execution_config.task_queue.name
            if description.workflow_type == config.workflow_type and queue == config.task_queue:
                return False  # a worker may still come: keep waiting on it
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_completed_event_attributes"):
                return False
        return True

    async def _start_once(
        self, config: TemporalBackendConfig, argument: CareFlowWorkflowInput, replace_stale: bool
    ) -> bool:
        """Start the care-flow execution (or attach to it); whether this call created it."""
        workflow_id = care_flow_workflow_id(argument.request_id)
        created = False
        try:
            handle = await self._client.start_workflow(
                config.workflow_type,
                argument,
                id=workflow_id,
                task_queue=config.task_queue,
                id_conflict_policy=(
                    WorkflowIDConflictPolicy.TERMINATE_EXISTING
                    if replace_stale
                    else WorkflowIDConflictPolicy.USE_EXISTING
                ),
                id_reuse_policy=(
                    WorkflowIDReusePolicy.ALLOW_DUPLICATE
                    if replace_stale
                    else WorkflowIDReusePolicy.REJECT_DUPLICATE
                ),
                memo={
                    MEMO_KEY: {
                        "request_id": argument.request_id,
                        "care_flow_definition_id": argument.care_flow_definition_id,
                        "patient_id": argument.patient_id,
                    }
                },
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(
                            temporal.SA_CARE_FLOW_DEFINITION_ID, argument.care_flow_definition_id
                        ),
                        SearchAttributePair(temporal.SA_PATIENT_ID, argument.patient_id),
                    ]
                ),
                static_summary=f"care flow {argument.care_flow_definition_id}",
            )
            # USE_EXISTING answers with the running execution; ``started`` says which it was.
            response = getattr(handle, "_start_workflow_response", None)
            created = bool(getattr(response, "started", True))
        except WorkflowAlreadyStartedError:
            pass  # closed already (REJECT_DUPLICATE): this request's care flow ran (or see _stale)
        return created

    async def _wait_picked_up(
        self, describe: Any, config: TemporalBackendConfig
    ) -> WorkflowExecutionDescription:
        deadline = asyncio.get_running_loop().time() + self._pickup_seconds
        while True:
            description: WorkflowExecutionDescription = await describe()
            if picked_up(description):
                return description
            if asyncio.get_running_loop().time() >= deadline:
                raise CareFlowNotPickedUpError(
                    config.workflow_type, config.task_queue, self._pickup_seconds
                )
            await asyncio.sleep(_POLL_SECONDS)

    def find_active_care_flow(
        self, care_flow_definition_id: str, patient_id: str, request_id: str | None = None
    ) -> str | None:
        """The id of a running care-flow execution of this definition for this patient (not
        ``request_id``'s own), or None (a visibility query on the executions' search attributes).

        Raises:
            BackendUnavailableError: Temporal or the store unreachable.
        """
        try:
            definition = self._store.configuration.get_care_flow_definition(care_flow_definition_id)
        except NotFoundError:
            return None
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        config = definition.backend
        if not isinstance(config, TemporalBackendConfig):
            return None
        try:
            return self._runner.run(
                self._find_active(config, care_flow_definition_id, patient_id, request_id),
                timeout=20,
            )
        except RPCError as exc:
            raise BackendUnavailableError(f"Temporal answered {exc.status.name}") from None
        except TimeoutError:
            raise BackendUnavailableError("Temporal did not answer in time") from None

    async def _find_active(
        self,
        config: TemporalBackendConfig,
        care_flow_definition_id: str,
        patient_id: str,
        request_id: str | None,
    ) -> str | None:
        own = care_flow_workflow_id(request_id) if request_id is not None else None
        # The care-flow executions carry the (opaque, PHI-free) PatientId and
        # CareFlowDefinitionId search attributes; the workflow type keeps requests out.
        query = (
            f"WorkflowType = {_quote(config.workflow_type)} "
            f"AND CareFlowDefinitionId = {_quote(care_flow_definition_id)} "
            f"AND PatientId = {_quote(patient_id)} AND ExecutionStatus = 'Running'"
        )
        async for execution in self._client.list_workflows(query, limit=10):
            if is_temporal_care_flow_id(execution.id) and execution.id != own:
                return execution.id
        return None


def picked_up(description: WorkflowExecutionDescription) -> bool:
    """Whether a worker has completed the execution's first workflow task (or it closed)."""
    if description.status != WorkflowExecutionStatus.RUNNING:
        return True
    raw = description.raw_description
    if not raw.HasField("pending_workflow_task"):
        return True
    pending = raw.pending_workflow_task
    first_task_done = raw.workflow_execution_info.history_length > 3
    return first_task_done and pending.attempt == 1


def _quote(value: str) -> str:
    """A visibility-query string literal (ids and names here never hold quotes)."""
    if any(c in "'\"\\" or ord(c) < 0x20 for c in value):
        raise BackendRefusedError("invalid_visibility_value", "a quote in a visibility filter")
    return f"'{value}'"


async def describe_care_flow(client: Client, care_flow_id: str, ui_url: str) -> CareFlow | None:
    """A temporal-backend care flow, read from Temporal: ids from the memo, data points from the
    start event's input (decoded by the client's converter), status from ``describe()``.

    Returns:
        None when there is no such execution, or it is not a care flow this service started
        (no ``careflow`` memo, or an input that is not a ``CareFlowWorkflowInput``).

    Raises:
        RPCError: Temporal unreachable (other than not found).
    """
    handle = client.get_workflow_handle(care_flow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    memo = await description.memo_value(MEMO_KEY, default=None)
    if not isinstance(memo, dict):
        return None
    data_points: dict[str, Any] = {}
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if payloads:
            try:
                (argument,) = await client.data_converter.decode(payloads, [CareFlowWorkflowInput])
            except EncryptionKeyNotFound:
                raise
            except Exception:  # not an input this service wrote: someone else's execution
                log.info("execution %s has no care-flow input: not a care flow", care_flow_id)
                return None
            data_points = argument.data_points
        break
    return CareFlow(
        id=care_flow_id,
        care_flow_definition_id=str(memo.get("care_flow_definition_id", "")),
        patient_id=str(memo.get("patient_id", "")),
        data_points=data_points,
        request_id=str(memo.get("request_id", "")),
        started_at=description.start_time or datetime.now(UTC),
        backend="temporal",
        status=description.status.name if description.status else None,
        ui_url=ui_url,
    )
