"""The awell care-flow backend: patients and pathways in Awell's Orchestration API.

Patients: ``patientByIdentifier``; when absent, ``createPatient`` — serialised per identifier
through Temporal itself: a ``PatientResolutionWorkflow`` whose id is a hash of the identifier
(never the value itself: PHI), started with conflict policy USE_EXISTING, so every concurrent
request, on any API or worker replica, attaches to the one running resolution and shares its
result; reuse policy ALLOW_DUPLICATE, so a later resolution runs again and finds the patient.
An anonymous request's patient resolves under the request id (reuse ALLOW_DUPLICATE_FAILED_ONLY:
a retry after success gets the first run's patient, after a failure tries again).

Care flows: ``startPathway`` at most once per request id. A row is claimed against the request
before the call and completed with the pathway id after it (before the request answers
SUCCESS); a retry finds the completed row and starts nothing. When a row was claimed but never
completed (the call failed, or its answer was lost), the retry first looks for a pathway of the
definition that Awell started for the patient since the claim and that no other request
recorded, and adopts it. Awell's API takes no idempotency key, so this is the best a client can
do; see the README for what it does not cover.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from backends.awell_api import ACTIVE_PATHWAY_STATUSES, AwellApi
from backends.base import BackendRefusedError, BackendUnavailableError
from backends.loop import LoopRunner
from careflow.answers import CareFlow, Patient
from careflow.errors import NotFoundError, TransientStoreError
from careflow.keyed_ids import keyed_hash
from careflow.messages import RemotePatientInput, RemotePatientResult
from careflow.models import AwellBackendConfig, CareFlowDefinition, Identifier
from infra import temporal
from persistence.repositories.backend_care_flows import BackendCareFlowRecord
from persistence.store import Store

log = logging.getLogger(__name__)

# How far Awell's pathway start_date may run behind our claim (clock skew), for adoption.
_ADOPT_SKEW = timedelta(seconds=120)


def patient_resolution_id(identifier: Identifier | None, request_id: str, hash_key: bytes) -> str:
    """The resolution workflow id: a keyed hash (HMAC-SHA-256 with the server's id hash key,
    ``careflow.keyed_ids``) of (backend, system, value) — never the value, and not reversible by
    trying every small MRN — or, for an anonymous patient, the request id (not PHI)."""
    if identifier is None:
        return f"patient-resolution-awell-anonymous-{request_id}"
    digest = keyed_hash(hash_key, "patient", "awell", identifier.system, identifier.value)
    return f"patient-resolution-awell-{digest[:40]}"


def awell_value(value: Any) -> str:
    """A data point value as the string Awell's ``DataPointInput.value`` expects: dates ISO 8601
    (already), numbers ``"10"`` / ``"2.5"``, booleans ``"true"``/``"false"``, arrays and json as
    compact JSON text, telephone E.164 (already), strings as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class AwellBackend:
    """``CareFlowBackend`` on Awell's Orchestration API.

    Args:
        store: definitions and the request → pathway records.
        api: the GraphQL client.
        client: the Temporal client (patient-resolution workflows).
        runner: runs the client's coroutines on its loop.
        patient_task_queue: the task queue of the patient-resolution worker.
        wait_seconds: how long one ``resolve_patient`` attempt waits for the resolution.
        settle_seconds: how long an unanswered ``startPathway`` / ``createPatient`` call (timed
            out, 5xx, worker killed) may still be carried out by Awell: no second call is sent
            before it has passed (the retry looks for the first call's result meanwhile).
    """

    def __init__(
        self,
        store: Store,
        api: AwellApi,
        client: Client,
        runner: LoopRunner,
        patient_task_queue: str,
        id_hash_key: bytes,
        wait_seconds: float = 20.0,
        settle_seconds: float = 30.0,
    ) -> None:
        self._id_hash_key = id_hash_key
        self._settle = timedelta(seconds=settle_seconds)
        self._store = store
        self.api = api
        self._client = client
        self._runner = runner
        self._task_queue = patient_task_queue
        self._wait_seconds = wait_seconds

    # --- patients -------------------------------------------------------------------------------

    def find_patient(self, identifier: Identifier) -> Patient | None:
        patient_id = self.api.patient_by_identifier(identifier)
        if patient_id is None:
            return None
        return Patient(
            id=patient_id,
            identifiers=[identifier],
            anonymous=False,
            profile={},
            created_at=datetime.now(UTC),
        )

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        """Find-or-create through the identifier's one ``PatientResolutionWorkflow``.

        Raises:
            BackendRefusedError: Awell refused (``backend_refused`` with its codes).
            BackendUnavailableError: Awell or Temporal unavailable, or the resolution still
                running after ``wait_seconds`` (the activity's retry attaches to it again).
        """
        argument = RemotePatientInput(
            request_id=idempotency_key, identifier=identifier, profile=profile
        )
        workflow_id = patient_resolution_id(identifier, idempotency_key, self._id_hash_key)
        reuse = (
            WorkflowIDReusePolicy.ALLOW_DUPLICATE
            if identifier is not None
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
        )
        try:
            result = self._runner.run(
                self._resolve(argument, workflow_id, reuse), timeout=self._wait_seconds
            )
        except TimeoutError:
            raise BackendUnavailableError(
                "patient resolution still running",
                code="patient_resolution_pending",
                public_message="the patient's resolution is still running",
            ) from None
        except WorkflowFailureError as exc:
            cause: BaseException | None = exc.cause
            while cause is not None and not isinstance(cause, ApplicationError):
                cause = cause.__cause__
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise BackendRefusedError(cause.type or "backend_refused", cause.message) from None
            code = cause.type if isinstance(cause, ApplicationError) and cause.type else None
            raise BackendUnavailableError(
                "patient resolution failed",
                code=code or "awell_unavailable",
                public_message="the patient's resolution failed; retrying",
            ) from None
        except RPCError as exc:
            raise BackendUnavailableError(f"Temporal answered {exc.status.name}") from None
        patient = Patient(
            id=result.patient_id,
            identifiers=[identifier] if identifier is not None else [],
            anonymous=identifier is None,
            profile={},
            created_at=datetime.now(UTC),
        )
        return patient, result.created

    async def _resolve(
        self,
        argument: RemotePatientInput,
        workflow_id: str,
        reuse: WorkflowIDReusePolicy,
    ) -> RemotePatientResult:
        try:
            handle = await self._client.start_workflow(
                temporal.PATIENT_RESOLUTION_WORKFLOW,
                argument,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
                execution_timeout=timedelta(minutes=5),
                result_type=RemotePatientResult,
                static_summary="patient resolution (awell)",
            )
        except WorkflowAlreadyStartedError:
            # Anonymous, resolved before: the completed run's patient (REJECT after success).
            handle = self._client.get_workflow_handle(workflow_id, result_type=RemotePatientResult)
        return await handle.result()

    def resolve_now(
        self,
        argument: RemotePatientInput,
        last_create_at: datetime | None = None,
        on_create: Callable[[datetime | None], None] | None = None,
    ) -> RemotePatientResult:
        """The resolution itself (run by the resolution workflow's activity, serialised):
        ``patientByIdentifier``, then ``createPatient`` when absent.

        Args:
            last_create_at: when an earlier attempt sent ``createPatient`` without an answer:
                until ``settle_seconds`` after it, Awell may still create that patient, so no
                second ``createPatient`` is sent (the look-up finds it once it lands).
            on_create: called with the time just before ``createPatient`` is sent (the
                activity records it for its next attempt), and with None when Awell certainly
                did not create it (refused, rate-limited).

        Raises:
            BackendUnavailableError: ``awell_create_unconfirmed`` (retry after the wait) besides
                the API's own faults.
        """
        if argument.identifier is not None:
            found = self.api.patient_by_identifier(argument.identifier)
            if found is not None:
                return RemotePatientResult(patient_id=found, created=False)
        self._unsettled(last_create_at, "createPatient", "awell_create_unconfirmed")
        if on_create is not None:
            on_create(datetime.now(UTC))
        try:
            created = self.api.create_patient(argument.identifier, argument.profile)
        except (BackendRefusedError, BackendUnavailableError) as exc:
            if on_create is not None and _certainly_not_done(exc):
                on_create(None)
            raise
        return RemotePatientResult(patient_id=created, created=True)

    def _unsettled(self, last_call_at: datetime | None, operation: str, code: str) -> None:
        """Raise a retryable error while an unanswered call sent at ``last_call_at`` may still
        be carried out by Awell (Awell's API takes no idempotency key: a second call while the
        first is still in flight makes a second patient or pathway)."""
        if last_call_at is None:
            return
        remaining = (last_call_at + self._settle - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            message = (
                f"an earlier Awell {operation} call is unanswered; not calling again for "
                f"{remaining:.0f} s while it may still land"
            )
            raise BackendUnavailableError(
                message, code=code, public_message=message, retry_after=max(remaining, 0.5)
            )

    # --- care flows -----------------------------------------------------------------------------

    def _definition(
        self, care_flow_definition_id: str
    ) -> tuple[CareFlowDefinition, AwellBackendConfig]:
        try:
            definition = self._store.configuration.get_care_flow_definition(care_flow_definition_id)
        except NotFoundError as exc:
            error = exc.errors[0]
            raise BackendRefusedError(error.code, error.message) from None
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        config = definition.backend
        if not isinstance(config, AwellBackendConfig):
            raise BackendRefusedError(
                "care_flow_backend_mismatch", "the care flow definition's backend is not awell"
            )
        return definition, config

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        """``startPathway`` at most once per request (see the module docstring).

        Raises:
            BackendRefusedError: unknown/unpublished definition, or Awell refused.
            BackendUnavailableError: Awell or the store unavailable (retry).
        """
        definition, config = self._definition(care_flow_definition_id)
        if not definition.published:
            raise BackendRefusedError(
                "care_flow_definition_unpublished", "the care flow definition is not published"
            )
        records = self._store.backend_care_flows
        try:
            record = records.get(idempotency_key)
            if record is not None and record.care_flow_id is not None:
                return self._care_flow(record, data_points), False
            if record is not None:
                adopted = self._adopt(record, config)
                if adopted is not None:
                    return self._care_flow(adopted, data_points), False
                # Nothing to adopt yet: the last call may still be under way in Awell.
                self._unsettled(record.last_call_at, "startPathway", "awell_start_unconfirmed")
            else:
                record = records.claim(idempotency_key, "awell", definition.id, patient_id)
            records.mark_call(idempotency_key)
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        ids = config.data_point_definition_ids
        try:
            pathway_id = self.api.start_pathway(
                patient_id,
                config.pathway_definition_id,
                [
                    {"data_point_definition_id": ids.get(key, key), "value": awell_value(value)}
                    for key, value in data_points.items()
                ],
                config.release_id,
            )
        except (BackendRefusedError, BackendUnavailableError) as exc:
            if _certainly_not_done(exc):  # a retry need not wait for this call to land
                with contextlib.suppress(TransientStoreError):
                    records.mark_call(idempotency_key, sent=False)
            raise
        try:
            record = records.complete(idempotency_key, pathway_id)
        except TransientStoreError as exc:
            # The pathway exists; the retry adopts it (it started after the claim).
            raise BackendUnavailableError(str(exc)) from None
        return self._care_flow(record, data_points), True

    def _adopt(
        self, record: BackendCareFlowRecord, config: AwellBackendConfig
    ) -> BackendCareFlowRecord | None:
        """A pathway of the definition started for the patient since the claim and recorded
        against no request: the earlier attempt's, whose answer was lost. Recorded, or None."""
        since = record.attempted_at - _ADOPT_SKEW
        candidates = []
        for pathway in self.api.patient_pathways(record.patient_id):
            if pathway.pathway_definition_id != config.pathway_definition_id:
                continue
            started = _parse_date(pathway.start_date)
            if started is None or started < since:
                continue
            if self._store.backend_care_flows.by_care_flow_id(pathway.id) is not None:
                continue
            candidates.append((started, pathway.id))
        if not candidates:
            return None
        _, pathway_id = min(candidates)
        try:
            return self._store.backend_care_flows.complete(record.request_id, pathway_id)
        except IntegrityError:
            return None

    @staticmethod
    def _care_flow(record: BackendCareFlowRecord, data_points: dict[str, Any]) -> CareFlow:
        assert record.care_flow_id is not None
        return CareFlow(
            id=record.care_flow_id,
            care_flow_definition_id=record.care_flow_definition_id,
            patient_id=record.patient_id,
            data_points=data_points,
            request_id=record.request_id,
            started_at=record.started_at or record.attempted_at,
            backend="awell",
        )

    def find_active_care_flow(
        self, care_flow_definition_id: str, patient_id: str, request_id: str | None = None
    ) -> str | None:
        """An active pathway (``starting``, ``active`` or ``missing_baseline_info``) of the
        definition's pathway definition for the patient, not the one recorded as started for
        ``request_id``, or None."""
        try:
            _, config = self._definition(care_flow_definition_id)
        except BackendRefusedError:
            return None
        try:
            record = self._store.backend_care_flows.get(request_id) if request_id else None
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        own = record.care_flow_id if record is not None else None
        for pathway in self.api.patient_pathways(patient_id, ACTIVE_PATHWAY_STATUSES):
            if pathway.pathway_definition_id == config.pathway_definition_id and pathway.id != own:
                return pathway.id
        return None


def _certainly_not_done(exc: BackendRefusedError | BackendUnavailableError) -> bool:
    """Whether Awell certainly did not carry the call out: refused, or rate-limited (429)."""
    return isinstance(exc, BackendRefusedError) or exc.code == "awell_rate_limited"


def _parse_date(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
