"""``start_care_flow``: start the care flow in the backend, at most once per request."""

from __future__ import annotations

from temporalio import activity

from activities.backend_errors import backend_errors
from backends.base import CareFlowBackend
from backends.registry import BackendRegistry
from careflow.messages import (
    FindActiveCareFlowInput,
    FindActiveCareFlowResult,
    StartCareFlowInput,
    StartCareFlowResult,
)
from infra import temporal


class CareFlowActivities:
    """Args: backends: the configured backends, chosen per care flow definition (a single
    backend is used for every definition)."""

    def __init__(self, backends: BackendRegistry | CareFlowBackend) -> None:
        self._backends = (
            backends if isinstance(backends, BackendRegistry) else BackendRegistry.only(backends)
        )

    @activity.defn(name=temporal.START_CARE_FLOW)
    def start_care_flow(self, request: StartCareFlowInput) -> StartCareFlowResult:
        """Start the care flow, idempotent on ``request_id`` (the workflow id, which a reset keeps).

        Raises:
            ApplicationError: retryable ``backend_unavailable``; non-retryable
                ``care_flow_definition_unpublished`` / ``care_flow_definition_not_found``.
        """
        with backend_errors():
            backend = self._backends.for_definition(request.care_flow_definition_id)
            care_flow, created = backend.start_care_flow(
                request.care_flow_definition_id,
                request.patient_id,
                request.data_points,
                request.request_id,
            )
        return StartCareFlowResult(
            care_flow_id=care_flow.id, created=created, attempt=activity.info().attempt
        )

    @activity.defn(name=temporal.FIND_ACTIVE_CARE_FLOW)
    def find_active_care_flow(self, request: FindActiveCareFlowInput) -> FindActiveCareFlowResult:
        """The patient's active care flow of the definition, for ``skip_if_enrolled``, other
        than the one ``request.request_id`` started itself. Read-only.

        Raises:
            ApplicationError: retryable ``backend_unavailable``.
        """
        with backend_errors():
            backend = self._backends.for_definition(request.care_flow_definition_id)
            care_flow_id = backend.find_active_care_flow(
                request.care_flow_definition_id, request.patient_id, request.request_id
            )
        return FindActiveCareFlowResult(care_flow_id=care_flow_id, attempt=activity.info().attempt)
