"""The e2e benchmark's reference: ``WebhookRequestWorkflow``'s history shape with no-op activities.

``BenchReferenceWorkflow`` takes the same input (``WebhookRequestInput``, body included), runs the
same three activities by the same names with the same options (timeouts, retry policy), writes the
same search attributes and the same memo once per workflow task at the same points, and returns
the same ``RequestState``. Its activities do nothing: they return results of the same models and
sizes (constants, fresh ids), without the database, the configuration cache or the mapping. So
``e2e_rate / reference_rate`` is what our own code costs on top of what Temporal and the SDK cost.

The worker (``python bench/reference.py``, settings from the environment like ``worker.py``) gets
the very arguments ``worker.build_worker`` passes to ``Worker`` (captured, not copied), with only
the workflows and activities swapped, on a thread pool of the size ``worker.py`` uses, so tuning
``build_worker`` tunes the reference too.

Like ``workflows/request.py``, this module runs in the workflow sandbox (re-imported per run), so
its top-level imports mirror that file's; the worker's own imports are inside ``main``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from careflow.messages import (
        RequestState,
        ResolvePatientInput,
        ResolvePatientResult,
        StartCareFlowInput,
        StartCareFlowResult,
        TimelineEntry,
        ValidateRequestInput,
        ValidationResult,
        WebhookRequestInput,
    )
    from careflow.models import Identifier, RequestError, RequestStatus
    from infra import temporal

REFERENCE_WORKFLOW_TYPE = "BenchReferenceWorkflow"
# worker.py's main(): ThreadPoolExecutor(max_workers=16), max_concurrent_activities = 16.
WORKER_THREADS = 16
_ACTIVITY_TIMEOUT = timedelta(seconds=30)

# What validate_request maps from the FHIR sample (bench/run.py's webhook), as constants.
_DATA_POINTS: dict[str, Any] = {"mrn": "24680", "deceased": False, "contact_family": "du Exemplé"}
_IDENTIFIER = Identifier(system="urn:oid:1.2.36.146.595.217.0.1", value="24680")
_PATIENT_ID = "pat_" + "0" * 32


# --- no-op activities (synchronous, on the worker's thread pool, like ours) -------------------


@activity.defn(name=temporal.VALIDATE_REQUEST)
def validate_request(request: ValidateRequestInput) -> ValidationResult:
    return ValidationResult(
        verdict=RequestStatus.SCHEDULED,
        care_flow_definition_id="intake",
        data_points=dict(_DATA_POINTS),
        patient_identifier=_IDENTIFIER,
        attempt=activity.info().attempt,
    )


@activity.defn(name=temporal.RESOLVE_PATIENT)
def resolve_patient(request: ResolvePatientInput) -> ResolvePatientResult:
    return ResolvePatientResult(
        patient_id=_PATIENT_ID, created=False, anonymous=False, attempt=activity.info().attempt
    )


@activity.defn(name=temporal.START_CARE_FLOW)
def start_care_flow(request: StartCareFlowInput) -> StartCareFlowResult:
    return StartCareFlowResult(
        care_flow_id="cf_" + uuid.uuid4().hex, created=True, attempt=activity.info().attempt
    )


ACTIVITIES = [validate_request, resolve_patient, start_care_flow]


# --- the workflow: the same steps, upserts and results as WebhookRequestWorkflow --------------


@workflow.defn(name=REFERENCE_WORKFLOW_TYPE)
class ReferenceWorkflow:
    def __init__(self) -> None:
        self._state = RequestState(status=RequestStatus.RECEIVED)
        self._search_attributes: dict[str, Any] = {}

    @workflow.query(name=temporal.STATUS_QUERY)
    def status(self) -> RequestState:
        return self._state

    @workflow.run
    async def run(self, request: WebhookRequestInput) -> RequestState:
        self._state.timeline.append(
            TimelineEntry(status=RequestStatus.RECEIVED, at=request.received_at)
        )
        info = workflow.info()
        first_run = info.run_id == info.first_execution_run_id
        if request.door_rejected or request.body is None:
            self._state.verdict = RequestStatus.REJECTED
            self._set(RequestStatus.REJECTED, errors=request.handler_errors)
            self._flush()
            return self._state
        if first_run and not request.is_test and request.handler_status == RequestStatus.REJECTED:
            self._state.verdict = RequestStatus.REJECTED
            self._set(RequestStatus.REJECTED, errors=request.handler_errors)
            self._flush()
            return self._state
        return await self._process(request)

    async def _process(self, request: WebhookRequestInput) -> RequestState:
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=60),
            maximum_attempts=request.activity_max_attempts,
        )
        options: dict[str, Any] = {
            "start_to_close_timeout": _ACTIVITY_TIMEOUT,
            "schedule_to_close_timeout": timedelta(seconds=request.activity_max_seconds),
            "retry_policy": retry,
        }
        self._flush()
        info = workflow.info()
        validation: ValidationResult = await workflow.execute_activity(
            temporal.VALIDATE_REQUEST,
            ValidateRequestInput(
                request_id=request.request_id,
                webhook_id=request.webhook_id,
                body=request.body or b"",
                media_type=request.media_type,
                is_test=request.is_test,
                ignore_enabled=info.run_id == info.first_execution_run_id
                and request.handler_status == RequestStatus.SCHEDULED,
            ),
            result_type=ValidationResult,
            **options,
        )
        self._state.verdict = validation.verdict
        self._state.data_points = validation.data_points
        self._state.patient_identifier = validation.patient_identifier
        if validation.care_flow_definition_id:
            self._search_attributes["CareFlowDefinitionId"] = validation.care_flow_definition_id
        assert validation.care_flow_definition_id is not None
        self._set(
            RequestStatus.SCHEDULED,
            message=f"validate_request succeeded on attempt {validation.attempt}",
        )
        self._set(RequestStatus.PROCESSING)
        self._flush()
        patient: ResolvePatientResult = await self._activity(
            temporal.RESOLVE_PATIENT,
            ResolvePatientInput(
                request_id=request.request_id,
                patient_identifier=validation.patient_identifier,
                profile=validation.profile,
            ),
            ResolvePatientResult,
            options,
        )
        self._state.patient_id = patient.patient_id
        self._search_attributes["PatientId"] = patient.patient_id
        self._note(f"patient matched; resolve_patient succeeded on attempt {patient.attempt}")
        self._flush()
        care_flow: StartCareFlowResult = await self._activity(
            temporal.START_CARE_FLOW,
            StartCareFlowInput(
                request_id=request.request_id,
                care_flow_definition_id=validation.care_flow_definition_id,
                patient_id=patient.patient_id,
                data_points=validation.data_points,
            ),
            StartCareFlowResult,
            options,
        )
        self._state.care_flow_id = care_flow.care_flow_id
        self._search_attributes["CareFlowId"] = care_flow.care_flow_id
        self._set(
            RequestStatus.SUCCESS,
            message=f"care flow started; start_care_flow succeeded on attempt {care_flow.attempt}",
        )
        self._flush()
        return self._state

    async def _activity(
        self, name: str, arg: Any, result_type: type[Any], options: dict[str, Any]
    ) -> Any:
        try:
            return await workflow.execute_activity(name, arg, result_type=result_type, **options)
        except ActivityError as exc:
            self._set(RequestStatus.FAILED, message=name)
            self._flush()
            raise ApplicationError("activity failed", non_retryable=True) from exc

    def _set(
        self,
        status: RequestStatus,
        *,
        errors: list[RequestError] | None = None,
        message: str | None = None,
    ) -> None:
        self._state.status = status
        if errors is not None:
            self._state.errors = list(errors)
        self._state.timeline.append(
            TimelineEntry(status=status, at=workflow.now(), message=message)
        )

    def _note(self, message: str) -> None:
        self._state.timeline.append(
            TimelineEntry(status=self._state.status, at=workflow.now(), message=message)
        )

    def _flush(self) -> None:
        updates = [temporal.SA_REQUEST_STATUS.value_set(self._state.status.value)]
        for key in (
            temporal.SA_CARE_FLOW_DEFINITION_ID,
            temporal.SA_PATIENT_ID,
            temporal.SA_CARE_FLOW_ID,
        ):
            value = self._search_attributes.pop(key.name, None)
            if value is not None:
                updates.append(key.value_set(value))
        workflow.upsert_search_attributes(updates)
        memo = self._state.model_dump(
            mode="json",
            include={"status", "verdict", "errors", "timeline", "patient_id", "care_flow_id"},
        )
        workflow.upsert_memo({temporal.MEMO_STATE: memo})


# --- the worker --------------------------------------------------------------------------------


def worker_arguments(client: Any, settings: Any, executor: Any) -> dict[str, Any]:
    """The keyword arguments ``worker.build_worker`` gives ``Worker`` (nothing is built)."""
    import worker as worker_module
    from persistence.store import Store

    captured: dict[str, Any] = {}

    def capture(client: Any, **kwargs: Any) -> None:
        captured.update(kwargs, client=client)

    real = worker_module.Worker
    worker_module.Worker = capture  # type: ignore[assignment,misc]
    try:
        # The in-memory store is never touched: build_worker only wraps it.
        worker_module.build_worker(client, Store("sqlite://"), settings, executor)
    finally:
        worker_module.Worker = real  # type: ignore[misc]
    return captured


async def main() -> None:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from careflow import logs
    from careflow.settings import get_settings

    logs.configure()
    settings = get_settings()
    client = await temporal.connect(settings)
    with ThreadPoolExecutor(max_workers=WORKER_THREADS) as executor:
        # worker.py's settings, exactly, with only the workflows and activities swapped.
        arguments = worker_arguments(client, settings, executor)
        arguments.update(workflows=[ReferenceWorkflow], activities=ACTIVITIES)
        worker = Worker(**arguments)
        logging.getLogger("bench.reference").info(
            "reference worker polling task queue %s", settings.careflow_task_queue
        )
        await worker.run()


if __name__ == "__main__":
    import asyncio
    import contextlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # worker.py, bench.*
    # Run the imported module, not __main__: the sandbox re-imports a workflow by module name.
    from bench import reference

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(reference.main())
