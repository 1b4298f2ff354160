"""``resolve_patient``: find the patient by identifier or create one (anonymous without one)."""

from __future__ import annotations

from temporalio import activity

from activities.backend_errors import backend_errors
from backends.base import CareFlowBackend
from backends.registry import BackendRegistry
from careflow.messages import ResolvePatientInput, ResolvePatientResult
from infra import temporal


class PatientActivities:
    """Args: backends: the configured backends, chosen per care flow definition (a single
    backend is used for every definition)."""

    def __init__(self, backends: BackendRegistry | CareFlowBackend) -> None:
        self._backends = (
            backends if isinstance(backends, BackendRegistry) else BackendRegistry.only(backends)
        )

    @activity.defn(name=temporal.RESOLVE_PATIENT)
    def resolve_patient(self, request: ResolvePatientInput) -> ResolvePatientResult:
        """Find-or-create the request's patient (contract §6). Idempotent: keyed by identifier,
        or by ``request_id`` for an anonymous patient, so a retry or reset reuses it.

        Raises:
            ApplicationError: retryable ``backend_unavailable``; non-retryable with the
                backend's code when it refuses.
        """
        with backend_errors():
            # The definition's backend holds the patient (built-in for builtin and temporal).
            backend = self._backends.for_definition(request.care_flow_definition_id)
            identifier = request.patient_identifier
            if identifier is not None:
                found = backend.find_patient(identifier)
                if found is not None:
                    return ResolvePatientResult(
                        patient_id=found.id,
                        created=False,
                        anonymous=False,
                        attempt=activity.info().attempt,
                    )
            patient, created = backend.create_patient(
                identifier, request.profile, request.request_id
            )
        return ResolvePatientResult(
            patient_id=patient.id,
            created=created,
            anonymous=patient.anonymous,
            attempt=activity.info().attempt,
        )
