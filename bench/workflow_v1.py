"""The v1 reference of the e2e bench: ``WebhookRequestWorkflow`` as it was before issue 19, frozen.

A verbatim copy of ``workflows/request.py`` at commit 58fb716 (three activities, search attributes
and memo written once per workflow task: 31 history events per SUCCESS request), registered as
``BenchWebhookRequestV1``. Unlike ``bench/reference.py`` (which subclasses the live workflow), this
copy does not change when the live workflow does: ``make bench`` drains it with the real
activities (``python bench/workflow_v1.py``, the worker of ``worker.build_worker`` with the
workflow swapped and the worker tuning of that time: the SDK's default sandbox and workflow task
slots) side by side with the live one and reports ``e2e_vs_v1_ratio``. Only the live
activities' interfaces are shared; they stay backwards compatible with this input.

Original module docstring:

    ``WebhookRequestWorkflow``: one webhook request, from verdict to started care flow.

    Orchestration only: every decision that needs I/O is an activity. Status and timeline are
    written to the ``RequestStatus`` search attribute and the memo once per workflow task (just
    before each activity is awaited, and at the end), never once per transition (contract §7).

    Which run trusts which verdict — a request is validated at most twice, by the same pure
    ``careflow.validation.validate``:

    =====================================  ==================================================
    the ingest handler (cached config)     decides the HTTP answer. Door rejections (size, media
                                           type, signature, syntax) and, on the first run,
                                           REJECTED are final: the sender was told so. Its
                                           mapping of a REJECTED request is carried in the
                                           input, so that request is never validated again.
    ``validate_request`` (current config)  the authoritative verdict for everything the handler
                                           accepted (202), for TEST requests and for every run
                                           after a reset (a retry re-validates against the
                                           configuration of now).
    the request log                        validates nothing: it reads the verdict from the
                                           query or memo and the mapping from the history.
    =====================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.care_flows import CareFlowActivities
    from activities.patients import PatientActivities
    from activities.validation import ValidationActivities
    from careflow.messages import (
        RequestState,
        ResolvePatientInput,
        ResolvePatientResult,
        StartCareFlowInput,
        StartCareFlowResult,
        TimelineEntry,
        ValidateRequestInput,
        WebhookRequestInput,
    )
    from careflow.models import RequestError, RequestStatus
    from infra import temporal

V1_WORKFLOW_TYPE = "BenchWebhookRequestV1"
_ACTIVITY_TIMEOUT = timedelta(seconds=30)
In = TypeVar("In")
Out = TypeVar("Out")


@workflow.defn(name=V1_WORKFLOW_TYPE)
class WebhookRequestWorkflowV1:
    """Runs one request: validate → resolve patient → start care flow.

    Ends Completed for SUCCESS, REJECTED and TEST; ends Failed (with the request FAILED) when an
    activity fails for good or its retries run out.
    """

    def __init__(self) -> None:
        self._state = RequestState(status=RequestStatus.RECEIVED)
        self._search_attributes: dict[str, Any] = {}

    @workflow.query(name=temporal.STATUS_QUERY)
    def status(self) -> RequestState:
        """The live state: status, verdict, errors, timeline, data points, patient, care flow."""
        return self._state

    @workflow.run
    async def run(self, request: WebhookRequestInput) -> RequestState:
        self._state.timeline.append(
            TimelineEntry(status=RequestStatus.RECEIVED, at=request.received_at)
        )
        info = workflow.info()
        first_run = info.run_id == info.first_execution_run_id
        if request.door_rejected or request.body is None:
            # Refused at the door (size, media type, signature, syntax): final, never retried.
            self._state.verdict = RequestStatus.REJECTED
            status = RequestStatus.TEST if request.is_test else RequestStatus.REJECTED
            self._set(status, errors=request.handler_errors, message=_codes(request.handler_errors))
            self._flush()
            return self._state
        if first_run and not request.is_test and request.handler_status == RequestStatus.REJECTED:
            # The sender was told REJECTED and may have resent: the first run keeps that verdict.
            self._state.verdict = RequestStatus.REJECTED
            self._set(
                RequestStatus.REJECTED,
                errors=request.handler_errors,
                message=_codes(request.handler_errors),
            )
            self._state.data_points = request.handler_data_points
            self._state.patient_identifier = request.handler_patient_identifier
            self._flush()
            return self._state
        try:
            return await self._process(request, first_run)
        except ApplicationError:
            raise
        except Exception as exc:  # no exception may leave the request stuck RUNNING
            error = _error_of(exc)
            self._set(RequestStatus.FAILED, errors=[error], message=error.code)
            self._flush()
            raise ApplicationError(error.message, type=error.code, non_retryable=True) from exc

    @staticmethod
    def _validate_input(
        request: WebhookRequestInput, *, ignore_enabled: bool
    ) -> ValidateRequestInput:
        return ValidateRequestInput(
            request_id=request.request_id,
            webhook_id=request.webhook_id,
            body=request.body or b"",
            media_type=request.media_type,
            is_test=request.is_test,
            ignore_enabled=ignore_enabled,
        )

    async def _process(self, request: WebhookRequestInput, first_run: bool) -> RequestState:
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
        validation = await workflow.execute_activity_method(
            ValidationActivities.validate_request,
            # Accepted (202) requests in flight finish even if the webhook is disabled or
            # deleted meanwhile; a reset run checks the webhook's state again.
            self._validate_input(
                request,
                ignore_enabled=first_run and request.handler_status == RequestStatus.SCHEDULED,
            ),
            **options,
        )
        self._state.verdict = validation.verdict
        self._state.data_points = validation.data_points
        self._state.patient_identifier = validation.patient_identifier
        if validation.care_flow_definition_id:
            self._search_attributes["CareFlowDefinitionId"] = validation.care_flow_definition_id
        if request.is_test:
            self._set(
                RequestStatus.TEST,
                errors=validation.errors,
                message=f"verdict {validation.verdict.value}",
            )
            self._flush()
            return self._state
        if validation.verdict == RequestStatus.REJECTED:
            self._set(
                RequestStatus.REJECTED,
                errors=validation.errors,
                message=_codes(validation.errors),
            )
            self._flush()
            return self._state
        assert validation.care_flow_definition_id is not None
        self._set(RequestStatus.SCHEDULED, message=_attempt("validate_request", validation.attempt))
        self._set(RequestStatus.PROCESSING)
        self._flush()
        patient: ResolvePatientResult = await self._activity(
            PatientActivities.resolve_patient,
            ResolvePatientInput(
                request_id=request.request_id,
                patient_identifier=validation.patient_identifier,
                profile=validation.profile,
            ),
            options,
        )
        self._state.patient_id = patient.patient_id
        self._search_attributes["PatientId"] = patient.patient_id
        what = (
            "anonymous patient created"
            if patient.anonymous
            else ("patient created" if patient.created else "patient matched")
        )
        self._note(f"{what}; {_attempt('resolve_patient', patient.attempt)}")
        self._flush()
        care_flow: StartCareFlowResult = await self._activity(
            CareFlowActivities.start_care_flow,
            StartCareFlowInput(
                request_id=request.request_id,
                care_flow_definition_id=validation.care_flow_definition_id,
                patient_id=patient.patient_id,
                data_points=validation.data_points,
            ),
            options,
        )
        self._state.care_flow_id = care_flow.care_flow_id
        self._search_attributes["CareFlowId"] = care_flow.care_flow_id
        started = "care flow started" if care_flow.created else "care flow already started"
        self._set(
            RequestStatus.SUCCESS,
            message=f"{started}; {_attempt('start_care_flow', care_flow.attempt)}",
        )
        self._flush()
        return self._state

    async def _activity(
        self, method: Callable[[Any, In], Out], arg: In, options: dict[str, Any]
    ) -> Out:
        """Run an activity method; when it fails for good, end the request FAILED and the run
        Failed."""
        name = method.__name__  # the activity type names are the method names (contract §7)
        try:
            return await workflow.execute_activity_method(method, arg, **options)
        except ActivityError as exc:
            error = _error_of(exc)
            self._set(RequestStatus.FAILED, errors=[error], message=f"{name}: {error.code}")
            self._flush()
            raise ApplicationError(error.message, type=error.code, non_retryable=True) from exc

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
        """Write status, search attributes and the PHI-free memo: once per workflow task."""
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


def _codes(errors: list[RequestError]) -> str:
    return ", ".join(sorted({e.code for e in errors}))


def _attempt(activity_name: str, attempt: int) -> str:
    return f"{activity_name} succeeded on attempt {attempt}"


def _error_of(exc: BaseException) -> RequestError:
    """The request error for a failure: the innermost ``ApplicationError``'s type and message
    (activities put codes there, never payload values), else a timeout or an internal error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type:
            return RequestError(code=_snake(cause.type), message=cause.message)
        cause = cause.__cause__
    if isinstance(exc, ActivityError):
        return RequestError(
            code="activity_retries_exhausted",
            message=f"{exc.activity_type} did not complete within its retry bounds",
        )
    return RequestError(code="internal_error", message=type(exc).__name__)


def _snake(name: str) -> str:
    if name.islower() or "_" in name:
        return name
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


# --- the worker: worker.build_worker's arguments, real activities, this workflow ---------------


# ``build_worker`` arguments added since v1 (issue 19's third part), left to the SDK's defaults.
V1_UNTUNED = (
    "workflow_runner",
    "max_concurrent_workflow_tasks",
    "max_concurrent_workflow_task_polls",
)


async def main() -> None:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from bench.reference import WORKER_THREADS, worker_arguments
    from careflow import logs
    from careflow.settings import get_settings
    from persistence.store import Store

    logs.configure()
    settings = get_settings()
    store = Store(settings.sqlalchemy_url)
    client = await temporal.connect(settings)
    with ThreadPoolExecutor(max_workers=WORKER_THREADS) as executor:
        arguments = worker_arguments(client, settings, executor, store)
        arguments.update(workflows=[WebhookRequestWorkflowV1])
        for tuned_since in V1_UNTUNED:  # the worker as v1 ran: the SDK's defaults
            arguments.pop(tuned_since, None)
        worker = Worker(**arguments)
        logging.getLogger("bench.workflow_v1").info(
            "v1 worker polling task queue %s", settings.careflow_task_queue
        )
        await worker.run()


if __name__ == "__main__":
    import asyncio
    import contextlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # worker.py, bench.*
    # Run the imported module, not __main__: the sandbox re-imports a workflow by module name.
    from bench import workflow_v1

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(workflow_v1.main())
