"""The request's state as ``WebhookRequestWorkflow`` keeps and publishes it (deterministic).

``RequestBook`` holds the live ``RequestState`` (what the ``status`` query answers), appends
its timeline, and writes what operators see outside the worker only where it changed:

- the ``RequestStatus`` search attribute (with the other search attributes gathered since) when
  the status differs from the one written — and, while ``hold_in_flight`` is set, only once the
  request has settled: a request whose local activities all succeed within its first workflow
  task writes its status once (SUCCESS, with its ids), since an in-flight status written in the
  same task as the settled one is an event no reader could ever see;
- the PHI-free memo once the request has settled, only where the run's result cannot carry the
  state: a run that ends Failed. A run that completes returns ``result()``, which the request log
  reads from the completion event (one history event and the memo's copies in the mutable state
  and visibility less per request: issue 19). Runs started before that shape
  (``WebhookRequestInput.memo_on_completion`` absent, so True) keep writing the memo at every
  settle, so their histories replay as recorded.

The helpers below turn failures into request errors and name activity attempts.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from careflow.messages import RequestState, TimelineEntry
    from careflow.models import RequestError, RequestStatus
    from infra import temporal

# Statuses a request passes through; at any other the request has settled. These are also in
# the RequestStatus search attribute.
IN_FLIGHT = frozenset({RequestStatus.RECEIVED, RequestStatus.SCHEDULED, RequestStatus.PROCESSING})
# What the memo holds (no PHI: no data points, no identifier) and the result too (the request
# log reads data points and identifier from the validation, or the input, in the history).
SETTLED_FIELDS = {
    "status",
    "verdict",
    "errors",
    "timeline",
    "patient_id",
    "care_flow_id",
    "reasons",
}


class RequestBook:
    """The live state of one run and its writes to search attributes and memo.

    Args:
        memo_on_completion: write the memo at every settle (runs started before issue 19's
            second part); False writes it only for FAILED, the result carrying the rest.

    Attributes:
        hold_in_flight: write no in-flight status (module docstring); the workflow clears it
            before it waits for anything a reader could watch (a regular activity's retries).
    """

    def __init__(self, memo_on_completion: bool = True) -> None:
        self.state = RequestState(status=RequestStatus.RECEIVED)
        self.memo_on_completion = memo_on_completion
        self.hold_in_flight = False
        self._search_attributes: dict[str, Any] = {}

    def gather(self, key: str, value: str) -> None:
        """A search attribute (``CareFlowDefinitionId``, ``PatientId``, ``CareFlowId``) to write
        with the next status change."""
        self._search_attributes[key] = value

    def set(
        self,
        status: RequestStatus,
        *,
        errors: list[RequestError] | None = None,
        message: str | None = None,
    ) -> None:
        """Move to ``status`` (a timeline entry now), replacing the errors when given."""
        self.state.status = status
        if errors is not None:
            self.state.errors = list(errors)
        self.state.timeline.append(TimelineEntry(status=status, at=workflow.now(), message=message))

    def note(self, message: str) -> None:
        """A message on the current status: onto its entry when that has none (one PROCESSING
        row per run, not a bare one and a noted one), else a new entry."""
        timeline = self.state.timeline
        if timeline and timeline[-1].status == self.state.status and timeline[-1].message is None:
            timeline[-1] = timeline[-1].model_copy(update={"message": message})
            return
        timeline.append(TimelineEntry(status=self.state.status, at=workflow.now(), message=message))

    def flush(self) -> None:
        """Write what operators see, only where it changed (module docstring)."""
        if self.hold_in_flight and self.state.status in IN_FLIGHT:
            return
        current = workflow.info().typed_search_attributes
        if self.state.status.value != current.get(temporal.SA_REQUEST_STATUS):
            updates = [temporal.SA_REQUEST_STATUS.value_set(self.state.status.value)]
            for key in (
                temporal.SA_CARE_FLOW_DEFINITION_ID,
                temporal.SA_PATIENT_ID,
                temporal.SA_CARE_FLOW_ID,
            ):
                value = self._search_attributes.pop(key.name, None)
                if value is not None and value != current.get(key):
                    updates.append(key.value_set(value))
            workflow.upsert_search_attributes(updates)
        if self.state.status in IN_FLIGHT:
            return
        if self.memo_on_completion or self.state.status == RequestStatus.FAILED:
            memo = self.state.model_dump(mode="json", include=SETTLED_FIELDS)
            workflow.upsert_memo({temporal.MEMO_STATE: memo})

    def result(self) -> RequestState:
        """The run's result: the settled state without data points and identifier (the history
        holds them once already, in the validation or the input)."""
        return RequestState.model_validate(self.state.model_dump(include=SETTLED_FIELDS))


def codes(errors: list[RequestError]) -> str:
    """The errors' codes, sorted, comma-separated (a timeline message)."""
    return ", ".join(sorted({e.code for e in errors}))


def attempt(activity_name: str, number: int) -> str:
    """The timeline message of an activity that succeeded on attempt ``number``."""
    return f"{activity_name} succeeded on attempt {number}"


def error_of(exc: BaseException) -> RequestError:
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
