"""``start_care_flow``: start the care flow in the backend, at most once per request."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from backends.base import BackendRefusedError, BackendUnavailableError, CareFlowBackend
from careflow.messages import StartCareFlowInput, StartCareFlowResult
from infra import temporal


class CareFlowActivities:
    """Args: backend: the care-flow backend."""

    def __init__(self, backend: CareFlowBackend) -> None:
        self._backend = backend

    @activity.defn(name=temporal.START_CARE_FLOW)
    def start_care_flow(self, request: StartCareFlowInput) -> StartCareFlowResult:
        """Start the care flow, idempotent on ``request_id`` (the workflow id, which a reset keeps).

        Raises:
            ApplicationError: retryable ``backend_unavailable``; non-retryable
                ``care_flow_definition_unpublished`` / ``care_flow_definition_not_found``.
        """
        try:
            care_flow, created = self._backend.start_care_flow(
                request.care_flow_definition_id,
                request.patient_id,
                request.data_points,
                request.request_id,
            )
        except BackendUnavailableError as exc:
            raise ApplicationError(
                "care-flow backend unavailable", type="backend_unavailable"
            ) from exc
        except BackendRefusedError as exc:
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc
        return StartCareFlowResult(
            care_flow_id=care_flow.id, created=created, attempt=activity.info().attempt
        )
