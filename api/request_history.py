"""What a request's run history and description hold: its input, its verdict, its activities.

Read-only: nothing here validates or decides; the request log assembles these into answers.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

from api.request_models import PendingActivity
from careflow.messages import RequestState, ValidationResult, WebhookRequestInput
from careflow.models import RequestError, RequestStatus
from careflow.payload import PayloadError, parse_body
from infra import temporal

LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the marker the SDK records a local activity as


async def read(
    client: Client, handle: WorkflowHandle[Any, Any]
) -> tuple[WebhookRequestInput | None, ValidationResult | None]:
    """One pass over a run's history: the workflow input and the last ``validate_request`` result
    (from its activity completion, or its local-activity marker since issue 19).

    Returns:
        (input, result); either is None when the history does not hold it (yet).
    """
    converter = client.data_converter
    request: WebhookRequestInput | None = None
    validation: ValidationResult | None = None
    validate_scheduled: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if payloads:
                [request] = await converter.decode(payloads, [WebhookRequestInput])
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == temporal.VALIDATE_REQUEST:
                validate_scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in validate_scheduled and completed.result.payloads:
                [validation] = await converter.decode(completed.result.payloads, [ValidationResult])
        elif local_activity_type(event) == temporal.VALIDATE_REQUEST:  # a local activity
            details = event.marker_recorded_event_attributes.details
            if "result" in details and details["result"].payloads:
                [validation] = await converter.decode(
                    details["result"].payloads, [ValidationResult]
                )
    return request, validation


def local_activity_type(event: HistoryEvent) -> str | None:
    """The activity type of a local activity's marker event, else None."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in marker.details:
        return None
    payloads = marker.details["data"].payloads
    if not payloads:
        return None
    try:
        data = json.loads(payloads[0].data)
    except ValueError:
        return None
    kind = data.get("activity_type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


async def execution_failure(
    client: Client, handle: WorkflowHandle[Any, Any]
) -> RequestError | None:
    """The code and message of the run's failure (its ``WorkflowExecutionFailed`` event), if any.

    The failure's message is decoded by the client's codec (it is encrypted in the history).
    """
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = event.workflow_execution_failed_event_attributes.failure
            code = failure.application_failure_info.type or "workflow_failed"
            try:
                message = str(await client.data_converter.decode_failure(failure))
            except Exception:  # the failure itself is under a key this API lacks
                message = "the workflow failed; its message cannot be decrypted here"
            return RequestError(code=code, message=message)
    return None


async def first_workflow_task(handle: WorkflowHandle[Any, Any]) -> int | None:
    """The event id of the run's first completed workflow task (where a retry resets to)."""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return event.event_id
    return None


def pending_activities(
    description: WorkflowExecutionDescription, *, local_first: bool = False
) -> list[PendingActivity]:
    """Activities in flight, with the code (failure type) of their last failure.

    Args:
        description: the run's description.
        local_first: the run tried ``resolve_patient``, ``find_active_care_flow`` and
            ``start_care_flow`` once as local activities before scheduling them
            (``WebhookRequestInput.local_first`` and a built-in backend, as the validation
            marker's ``backend_kind`` says): their attempts count that one too.
    """
    pending = []
    for info in description.raw_description.pending_activities:
        offset = int(local_first and info.activity_type.name in temporal.LOCAL_FIRST_ACTIVITIES)
        failure = info.last_failure if info.HasField("last_failure") else None
        code = None
        if failure is not None:
            code = failure.application_failure_info.type or (
                "timeout" if failure.HasField("timeout_failure_info") else "error"
            )
        next_at = (
            info.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            if info.HasField("next_attempt_schedule_time")
            else None
        )
        last_at = (
            info.last_attempt_complete_time.ToDatetime(tzinfo=UTC)
            if info.HasField("last_attempt_complete_time")
            else None
        )
        pending.append(
            PendingActivity(
                activity_type=info.activity_type.name,
                attempt=info.attempt + offset,
                maximum_attempts=info.maximum_attempts + offset if info.maximum_attempts else 0,
                last_failure=code,
                last_attempt_at=last_at,
                next_attempt_at=next_at,
            )
        )
    return pending


def known_state(
    state: RequestState,
    request: WebhookRequestInput | None,
    validation: ValidationResult | None,
    *,
    first_run: bool,
) -> RequestState:
    """The live state, completed from the history where it lacks something.

    Mapped data points and identifier: the last ``validate_request`` result, else the handler's
    mapping carried in the input (a request the handler rejected), else the live state's (none
    when read from the memo or the result, which hold no PHI). Verdict and errors of a first run
    no worker has run yet (empty timeline): the handler's, from the input. A reset run (a retry)
    re-decides, so until a worker runs it, it shows neither.
    """
    update: dict[str, Any] = {}
    if validation is not None:
        update = {
            "data_points": validation.data_points,
            "patient_identifier": validation.patient_identifier,
        }
    elif request is not None and (
        request.handler_data_points or request.handler_patient_identifier
    ):
        update = {
            "data_points": request.handler_data_points,
            "patient_identifier": request.handler_patient_identifier,
        }
    if request is not None and first_run and not state.timeline:
        update["errors"] = request.handler_errors
        if request.door_rejected or request.handler_status == RequestStatus.REJECTED:
            update["verdict"] = RequestStatus.REJECTED
        if request.handler_status == RequestStatus.IGNORED and not request.is_test:
            update["verdict"] = RequestStatus.IGNORED
            update["reasons"] = request.handler_reasons
    return state.model_copy(update=update) if update else state


def logged_payload(request: WebhookRequestInput | None) -> Any:
    """The logged payload: parsed JSON, else the text as received, else None (omitted)."""
    if request is None or request.body is None:
        return None
    try:
        return parse_body(request.body, request.media_type)
    except PayloadError:
        return request.body.decode("utf-8", errors="replace")
