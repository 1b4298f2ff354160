"""``WebhookRequestWorkflow``: one webhook request, from verdict to started care flow.

Orchestration only: every decision that needs I/O is an activity. ``validate_request`` runs as a
local activity (in the first workflow task, on the worker: one marker event instead of an
activity's three events and a workflow task's three; its input, which holds the body, is not
recorded again). For the built-in backend (its own database: milliseconds), ``resolve_patient``,
``find_active_care_flow`` and ``start_care_flow`` are tried once as local activities too, each
bounded by ``LOCAL_ATTEMPT_TIMEOUT`` (``activity_calls``): when the backend answers, the whole
request runs in its first workflow task (9 history events for a SUCCESS). Remote backends
(Awell, a temporal backend waiting for its worker to pick the care flow up) may take seconds,
which a local activity would spend holding one of the worker's few workflow task slots:
theirs stay regular activities. When that
attempt fails retryably or times out, the activity is scheduled as a regular activity with the
remaining attempts — visible under Pending Activities in the Temporal UI and in the request
log's ``pending_activities`` with its attempt and last failure, retried with backoff — and the
PROCESSING status is written before it waits. Both are idempotent (contract §7), so a local
attempt whose answer was lost is safe to repeat.

The ``RequestStatus`` search attribute is written only when the status changes (with the other
search attributes gathered meanwhile), and not for in-flight statuses that settle in the same
workflow task; once the request has settled, a run that completes returns its PHI-free state as
its result and a run that fails writes it to the memo, which the request log reads when no
worker answers the ``status`` query (contract §7; issue 19 measures the shape). The state and
those writes are ``workflows/request_book.py``'s.

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
                                       query, the result or memo and the mapping from the
                                       history.
=====================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
)

with workflow.unsafe.imports_passed_through():
    from activities.care_flows import CareFlowActivities
    from activities.debounce import DebounceActivities
    from activities.patients import PatientActivities
    from activities.validation import ValidationActivities
    from careflow.conditions.models import ALREADY_ENROLLED, DEBOUNCED, IgnoredReason
    from careflow.messages import (
        ClaimDebounceInput,
        ClaimDebounceResult,
        FindActiveCareFlowInput,
        FindActiveCareFlowResult,
        ReleaseDebounceInput,
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
    from careflow.models import RequestStatus
    from infra import temporal

    # Deterministic, no module-level state: passed through, so the sandbox does not import
    # (or, without bytecode caches, compile) it afresh for every run as it must this module.
    from workflows.activity_calls import ActivityCalls
    from workflows.debounce import DebounceWindowWorkflow
    from workflows.request_book import RequestBook, attempt, codes, error_of

_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Runs reset before retried requests claimed their debounce window replay without the claim.
_DEBOUNCE_ON_RETRY = "debounce-on-retry"
In = TypeVar("In")
Out = TypeVar("Out")


@workflow.defn(name=temporal.WORKFLOW_TYPE)
class WebhookRequestWorkflow:
    """Runs one request: validate → resolve patient → start care flow.

    Ends Completed for SUCCESS, REJECTED, IGNORED and TEST; ends Failed (with the request
    FAILED) when an activity fails for good or its retries run out.
    """

    def __init__(self) -> None:
        self._book = RequestBook()
        self._request: WebhookRequestInput | None = None
        self._window_id: str | None = None  # the debounce window a retried run claimed
        self._calls = ActivityCalls(self._book, self._release_debounce_window)

    @workflow.query(name=temporal.STATUS_QUERY)
    def status(self) -> RequestState:
        """The live state: status, verdict, errors, timeline, data points, patient, care flow."""
        return self._book.state

    @workflow.run
    async def run(self, request: WebhookRequestInput) -> RequestState:
        self._book.state.timeline.append(
            TimelineEntry(status=RequestStatus.RECEIVED, at=request.received_at)
        )
        self._request = request
        self._book.memo_on_completion = request.memo_on_completion
        info = workflow.info()
        first_run = info.run_id == info.first_execution_run_id
        if request.door_rejected or request.body is None:
            # Refused at the door (size, media type, signature, syntax): final, never retried.
            self._book.state.verdict = RequestStatus.REJECTED
            status = RequestStatus.TEST if request.is_test else RequestStatus.REJECTED
            self._book.set(
                status, errors=request.handler_errors, message=codes(request.handler_errors)
            )
            self._book.flush()
            return self._book.result()
        if first_run and not request.is_test and request.handler_status == RequestStatus.REJECTED:
            # The sender was told REJECTED and may have resent: the first run keeps that verdict.
            self._book.state.verdict = RequestStatus.REJECTED
            self._book.set(
                RequestStatus.REJECTED,
                errors=request.handler_errors,
                message=codes(request.handler_errors),
            )
            self._book.state.data_points = request.handler_data_points
            self._book.state.patient_identifier = request.handler_patient_identifier
            self._book.flush()
            return self._book.result()
        if first_run and not request.is_test and request.handler_status == RequestStatus.IGNORED:
            # The sender was answered 200 IGNORED (conditions not met, or debounced): final.
            self._book.state.verdict = RequestStatus.IGNORED
            self._ignore(request.handler_reasons)
            return self._book.result()
        try:
            return await self._process(request, first_run)
        except ApplicationError:
            raise
        except Exception as exc:  # no exception may leave the request stuck RUNNING
            error = error_of(exc)
            self._book.set(RequestStatus.FAILED, errors=[error], message=error.code)
            self._book.flush()
            await self._release_debounce_window()
            # Chain only Temporal's own errors: Temporal stores a failure's causes in the history
            # in the clear, and another exception's message may quote payload values (PHI).
            cause = exc if isinstance(exc, ActivityError | ApplicationError) else None
            raise ApplicationError(error.message, type=error.code, non_retryable=True) from cause

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
        validation = await workflow.execute_local_activity_method(
            ValidationActivities.validate_request,
            # Accepted (202) requests in flight finish even if the webhook is disabled or
            # deleted meanwhile; a reset run checks the webhook's state again.
            self._validate_input(
                request,
                ignore_enabled=first_run and request.handler_status == RequestStatus.SCHEDULED,
            ),
            **options,
        )
        self._book.state.verdict = validation.verdict
        self._book.state.data_points = validation.data_points
        self._book.state.patient_identifier = validation.patient_identifier
        self._book.state.reasons = list(validation.reasons)
        if validation.care_flow_definition_id:
            self._book.gather("CareFlowDefinitionId", validation.care_flow_definition_id)
        if request.is_test:
            self._book.set(
                RequestStatus.TEST,
                errors=validation.errors,
                message=f"verdict {validation.verdict.value}",
            )
            self._book.flush()
            return self._book.result()
        if validation.verdict == RequestStatus.REJECTED:
            self._book.set(
                RequestStatus.REJECTED,
                errors=validation.errors,
                message=codes(validation.errors),
            )
            self._book.flush()
            await self._release_debounce_window()
            return self._book.result()
        if validation.verdict == RequestStatus.IGNORED:
            self._ignore(validation.reasons)
            return self._book.result()
        if (
            not first_run
            and validation.debounce_window_id is not None
            and workflow.patched(_DEBOUNCE_ON_RETRY)
            and not await self._claim_debounce_window(request, validation, options)
        ):
            return self._book.result()
        assert validation.care_flow_definition_id is not None
        # The built-in backend answers in milliseconds; a remote one's calls stay activities.
        local_first = request.local_first and validation.backend_kind == "builtin"
        self._book.hold_in_flight = local_first
        self._book.set(
            RequestStatus.SCHEDULED, message=attempt("validate_request", validation.attempt)
        )
        self._book.set(RequestStatus.PROCESSING)
        self._book.flush()
        patient: ResolvePatientResult = await self._calls.run(
            PatientActivities.resolve_patient,
            ResolvePatientInput(
                request_id=request.request_id,
                care_flow_definition_id=validation.care_flow_definition_id,
                patient_identifier=validation.patient_identifier,
                profile=validation.profile,
            ),
            options,
            local_first=local_first,
        )
        self._book.state.patient_id = patient.patient_id
        self._book.gather("PatientId", patient.patient_id)
        # True to this run: a reset run reuses the anonymous patient its first run created.
        if patient.anonymous:
            what = "anonymous patient " + ("created" if patient.created else "reused")
        else:
            what = "patient created" if patient.created else "patient matched"
        self._book.note(f"{what}; {attempt('resolve_patient', patient.attempt)}")
        self._book.flush()
        if validation.skip_if_enrolled:
            active: FindActiveCareFlowResult = await self._calls.run(
                CareFlowActivities.find_active_care_flow,
                FindActiveCareFlowInput(
                    care_flow_definition_id=validation.care_flow_definition_id,
                    patient_id=patient.patient_id,
                    request_id=request.request_id,
                ),
                options,
                local_first=local_first,
            )
            if active.care_flow_id is not None:
                self._ignore(
                    [
                        IgnoredReason(
                            code=ALREADY_ENROLLED,
                            message="the patient already has an active care flow of this "
                            "definition",
                            care_flow_id=active.care_flow_id,
                        )
                    ]
                )
                return self._book.result()
        care_flow: StartCareFlowResult = await self._calls.run(
            CareFlowActivities.start_care_flow,
            StartCareFlowInput(
                request_id=request.request_id,
                care_flow_definition_id=validation.care_flow_definition_id,
                patient_id=patient.patient_id,
                data_points=validation.data_points,
            ),
            options,
            local_first=local_first,
        )
        self._book.state.care_flow_id = care_flow.care_flow_id
        self._book.gather("CareFlowId", care_flow.care_flow_id)
        started = "care flow started" if care_flow.created else "care flow already started"
        self._book.set(
            RequestStatus.SUCCESS,
            message=f"{started}; {attempt('start_care_flow', care_flow.attempt)}",
        )
        self._book.flush()
        return self._book.result()

    async def _claim_debounce_window(
        self, request: WebhookRequestInput, validation: ValidationResult, options: dict[str, Any]
    ) -> bool:
        """A retried run claims its debounce window like a new request (contract §2): True when
        it holds it; else the request ends IGNORED ``debounced`` naming the holder."""
        assert validation.debounce_window_id is not None
        # An async activity (it uses the activity's Temporal client): typed like the sync ones.
        claim = cast(
            Callable[[Any, ClaimDebounceInput], ClaimDebounceResult],
            DebounceActivities.claim_debounce_window,
        )
        claimed = await self._calls.run(
            claim,
            ClaimDebounceInput(
                request_id=request.request_id,
                window_id=validation.debounce_window_id,
                seconds=validation.debounce_seconds or 1,
                task_queue=workflow.info().task_queue,
            ),
            options,
        )
        if claimed.holder is None:
            self._window_id = validation.debounce_window_id
            return True
        self._book.state.verdict = RequestStatus.IGNORED
        self._ignore(
            [
                IgnoredReason(
                    code=DEBOUNCED,
                    message="a request with the same debounce key arrived within the window",
                    request_id=claimed.holder,
                )
            ]
        )
        return False

    def _ignore(self, reasons: list[IgnoredReason]) -> None:
        """End the request IGNORED (Completed) with its reasons; nothing is started."""
        self._book.state.reasons = list(reasons)
        self._book.set(RequestStatus.IGNORED, message=", ".join(r.code for r in reasons) or None)
        self._book.flush()

    async def _release_debounce_window(self) -> None:
        """Release the debounce window this request holds (it ended FAILED or REJECTED), so the
        next request with the same key is not IGNORED for a request that started nothing."""
        request = self._request
        window = self._window_id or (request.debounce_window_id if request else None)
        if request is None or window is None:
            return
        handle = workflow.get_external_workflow_handle(window)
        try:
            await handle.signal(
                DebounceWindowWorkflow.release, ReleaseDebounceInput(request_id=request.request_id)
            )
        except Exception:  # the window closed already (timed out): nothing to release
            workflow.logger.info("debounce window already closed")
        self._book.note("debounce window released")
        self._book.flush()
