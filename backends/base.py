"""The care-flow backend interface: where patients live and care flows start.

The workflow never talks to a backend directly; activities do, through this interface, so
another backend (Awell's API, a FHIR server) can be added without touching the workflow.
"""

from __future__ import annotations

from typing import Any, Protocol

from careflow.answers import CareFlow, Patient
from careflow.models import Identifier


class BackendError(Exception):
    """Base of backend failures."""


class BackendUnavailableError(BackendError):
    """A transient fault (timeout, database locked, 5xx): retrying may succeed.

    Args:
        message: for this process's debugging only; may quote a driver's text, never shown.
        code: stable snake_case code for the request's errors (``backend_unavailable``).
        public_message: text without PHI for the request's errors; a generic one when None.
        retry_after: seconds the remote side asked to wait (HTTP ``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str = "",
        *,
        code: str = "backend_unavailable",
        public_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.public_message = public_message
        self.retry_after = retry_after


class BackendRefusedError(BackendError):
    """A permanent refusal (unknown or unpublished definition, rejected data): do not retry.

    Args:
        code: stable snake_case error code.
        message: text without PHI.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CareFlowBackend(Protocol):
    """What the activities need from a care-flow backend. Every method is idempotent."""

    def find_patient(self, identifier: Identifier) -> Patient | None:
        """The patient with this identifier (system URI and value match exactly), or None."""
        ...

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        """Insert-or-fetch: with an identifier, the one patient holding it; without, an anonymous
        patient keyed by ``idempotency_key``. Returns (patient, created)."""
        ...

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        """Start a care flow at most once per ``idempotency_key``. Returns (care flow, created).

        Raises:
            BackendRefusedError: the definition is unknown or unpublished.
            BackendUnavailableError: a transient fault.
        """
        ...

    def find_active_care_flow(
        self, care_flow_definition_id: str, patient_id: str, request_id: str | None = None
    ) -> str | None:
        """The id of the patient's active care flow of this definition, or None; the care flow
        started for ``request_id`` (the asking request's own, ``start_care_flow``'s idempotency
        key) does not count.

        "Active" is the backend's own notion (built-in: not completed; Temporal: a running
        execution; Awell: an active pathway). Read-only; used by ``skip_if_enrolled``.

        Raises:
            BackendUnavailableError: a transient fault.
        """
        ...
