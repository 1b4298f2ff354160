"""``resolve_remote_patient``: the find-or-create that ``PatientResolutionWorkflow`` serialises
per identifier (remote backends: Awell)."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from activities.backend_errors import backend_errors
from backends.awell import AwellBackend
from careflow.messages import RemotePatientInput, RemotePatientResult
from infra import temporal


class RemotePatientActivities:
    """Args: awell: the awell backend (None: not configured on this worker)."""

    def __init__(self, awell: AwellBackend | None) -> None:
        self._awell = awell

    @activity.defn(name=temporal.RESOLVE_REMOTE_PATIENT)
    def resolve_remote_patient(self, request: RemotePatientInput) -> RemotePatientResult:
        """``patientByIdentifier``, then ``createPatient`` when absent (anonymous: create).

        Raises:
            ApplicationError: retryable ``awell_unavailable`` / ``awell_rate_limited`` (after
                ``Retry-After``); non-retryable ``backend_refused`` with Awell's codes, or
                ``care_flow_backend_not_configured``.
        """
        with backend_errors():
            if self._awell is None or request.backend != "awell":
                from backends.base import BackendRefusedError

                raise BackendRefusedError(
                    "care_flow_backend_not_configured",
                    f"backend {request.backend} is not configured on this worker",
                )
            result = self._awell.resolve_now(request, _last_create_at(), _record_create)
        return result.model_copy(update={"attempt": activity.info().attempt})


def _record_create(at: datetime | None) -> None:
    """Hand the ``createPatient`` send time (None: certainly not done) to the next attempt."""
    activity.heartbeat(at.isoformat() if at is not None else "")


def _last_create_at() -> datetime | None:
    """When an earlier attempt of this activity sent ``createPatient`` (its heartbeat detail,
    which Temporal hands to the next attempt), or None."""
    details = activity.info().heartbeat_details
    if not details:
        return None
    try:
        return datetime.fromisoformat(str(details[-1]))
    except ValueError:
        return None
