"""The built-in care-flow backend: patients and care flows in the service's own database."""

from __future__ import annotations

from typing import Any

from backends.base import BackendRefusedError, BackendUnavailableError
from careflow.answers import CareFlow, Patient
from careflow.errors import NotFoundError, TransientStoreError
from careflow.models import Identifier
from persistence.store import Store


class BuiltinBackend:
    """``CareFlowBackend`` on top of ``Store``; transient database faults become
    ``BackendUnavailableError``.

    Args:
        store: the service's store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def find_patient(self, identifier: Identifier) -> Patient | None:
        try:
            return self._store.patients.find_patient(identifier)
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from exc

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        try:
            return self._store.patients.create_patient(identifier, profile, idempotency_key)
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from exc

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        try:
            definition = self._store.configuration.get_care_flow_definition(care_flow_definition_id)
            if not definition.published:
                raise BackendRefusedError(
                    "care_flow_definition_unpublished", "the care flow definition is not published"
                )
            return self._store.patients.start_care_flow(
                care_flow_definition_id, patient_id, data_points, idempotency_key
            )
        except NotFoundError as exc:
            # The repository's code says what is missing: the definition or the patient.
            error = exc.errors[0]
            raise BackendRefusedError(error.code, error.message) from exc
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from exc

    def find_active_care_flow(
        self, care_flow_definition_id: str, patient_id: str, request_id: str | None = None
    ) -> str | None:
        """The earliest care flow of this definition started for the patient (not the one
        ``request_id`` started), or None.

        Built-in care flows have no completion yet (nothing ends them), so every one is active.
        """
        try:
            return self._store.patients.find_care_flow_of(
                care_flow_definition_id, patient_id, request_id
            )
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from exc
