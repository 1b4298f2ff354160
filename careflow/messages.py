"""Inputs and outputs of the workflow, its activities and its query: one pydantic model each, so
fields can be added without breaking histories (STYLE.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from careflow.conditions.models import ConditionsOutcome, IgnoredReason
from careflow.models import Identifier, RequestError, RequestStatus


class WebhookRequestInput(BaseModel):
    """What the ingest handler hands to ``WebhookRequestWorkflow``.

    ``body`` is carried once, as received (raw bytes, base64 in the history), never as a parsed
    tree: that keeps a 1 MiB body under Temporal's 2 MiB payload limit even when every character
    needs JSON escaping, and away from the data converter's recursion limit (contract §7).
    ``door_rejected`` marks a request refused before parsing/dedupe (signature, size, media type,
    JSON syntax); such a request is logged but never retryable. ``handler_data_points`` and
    ``handler_patient_identifier`` carry what the handler's validation mapped, only for a request
    the handler REJECTED (the workflow keeps that verdict and shows the mapping without
    validating again); accepted requests get theirs from ``validate_request``.
    """

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    webhook_id: str
    webhook_name: str = ""
    care_flow_definition_id: str
    received_at: datetime
    body: bytes | None = None
    media_type: str = "application/json"
    is_test: bool = False
    delivery_id: str | None = None
    handler_status: RequestStatus
    handler_errors: list[RequestError] = Field(default_factory=list)
    handler_data_points: dict[str, Any] = Field(default_factory=dict)
    handler_patient_identifier: Identifier | None = None
    door_rejected: bool = False
    # An IGNORED handler verdict's reasons; the debounce window this request holds, if any.
    handler_reasons: list[IgnoredReason] = Field(default_factory=list)
    debounce_window_id: str | None = None
    activity_max_attempts: int = 10
    activity_max_seconds: float = 600.0
    # The workflow's shape this input was started for: absent (True) in inputs started before
    # issue 19's second part, whose runs write the settled state to the memo at every settle
    # and replay as recorded; the ingest handler sets False: the memo only for FAILED, a
    # completed run's result carrying its state (one history event less).
    memo_on_completion: bool = True
    # Absent (False) in inputs started before issue 19's third part, whose runs schedule
    # ``resolve_patient`` / ``start_care_flow`` as activities and replay as recorded; the ingest
    # handler sets True: each is tried once as a local activity first (one marker event), a
    # regular activity only when that attempt fails or times out.
    local_first: bool = False


class ValidateRequestInput(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    webhook_id: str
    body: bytes
    media_type: str
    is_test: bool = False
    ignore_enabled: bool = False


class ValidationResult(BaseModel):
    """Verdict of ``validate_request``: SCHEDULED, REJECTED or IGNORED (conditions not met,
    ``reasons`` say so), with everything mapped; ``conditions`` is the conditions' outcome and
    ``skip_if_enrolled`` the webhook's enrollment rule."""

    verdict: RequestStatus
    errors: list[RequestError] = Field(default_factory=list)
    care_flow_definition_id: str | None = None
    data_points: dict[str, Any] = Field(default_factory=dict)
    patient_identifier: Identifier | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    webhook_enabled: bool = True
    attempt: int = 1
    conditions: ConditionsOutcome | None = None
    reasons: list[IgnoredReason] = Field(default_factory=list)
    skip_if_enrolled: bool = False
    # The kind of the definition's backend (``builtin``, ``temporal``, ``awell``; None: unknown).
    # Only the built-in backend's calls (its own database, milliseconds) are tried as local
    # activities: a remote one's may take seconds, holding a workflow task slot meanwhile.
    backend_kind: str | None = None
    # Set by ``validate_request`` for a SCHEDULED request whose webhook debounces and whose body
    # has a key: the window a retried run claims (``claim_debounce_window``).
    debounce_window_id: str | None = None
    debounce_seconds: int | None = None


class ClaimDebounceInput(BaseModel):
    """Claim ``window_id`` for ``request_id`` for ``seconds`` (a retried request's window)."""

    request_id: str
    window_id: str
    seconds: int
    task_queue: str


class ClaimDebounceResult(BaseModel):
    """``holder``: the request holding the window, None when ``request_id`` holds it now."""

    holder: str | None = None


class ResolvePatientInput(BaseModel):
    """``care_flow_definition_id`` picks the backend holding the patient (absent: built-in)."""

    request_id: str
    care_flow_definition_id: str | None = None
    patient_identifier: Identifier | None = None
    profile: dict[str, Any] = Field(default_factory=dict)


class ResolvePatientResult(BaseModel):
    patient_id: str
    created: bool
    anonymous: bool
    attempt: int = 1


class StartCareFlowInput(BaseModel):
    request_id: str
    care_flow_definition_id: str
    patient_id: str
    data_points: dict[str, Any] = Field(default_factory=dict)


class FindActiveCareFlowInput(BaseModel):
    care_flow_definition_id: str
    patient_id: str
    # The asking request: the care flow it started itself is no enrollment (a run that starts
    # over after its ``start_care_flow`` committed, e.g. its first workflow task re-run after a
    # worker died, or a reset). None in inputs scheduled before.
    request_id: str | None = None


class FindActiveCareFlowResult(BaseModel):
    """The patient's active care flow of the definition (its id), or None."""

    care_flow_id: str | None = None
    attempt: int = 1


class StartCareFlowResult(BaseModel):
    care_flow_id: str
    created: bool
    attempt: int = 1


class DebounceWindowInput(BaseModel):
    """The request holding a debounce window (an opaque id, never the key value)."""

    request_id: str


class ReleaseDebounceInput(BaseModel):
    request_id: str


class TimelineEntry(BaseModel):
    """One line of a request's timeline; ``message`` carries codes and ids, never PHI."""

    status: RequestStatus
    at: datetime
    message: str | None = None


class RequestState(BaseModel):
    """The live state the ``status`` query answers with (and the memo mirrors, minus PHI)."""

    status: RequestStatus
    verdict: RequestStatus | None = None
    errors: list[RequestError] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    data_points: dict[str, Any] = Field(default_factory=dict)
    patient_identifier: Identifier | None = None
    patient_id: str | None = None
    care_flow_id: str | None = None
    reasons: list[IgnoredReason] = Field(default_factory=list)


class CareFlowWorkflowInput(BaseModel):
    """The one input of a care-flow workflow started by the temporal backend (the user's
    workflow receives this as JSON). ``data_points`` maps baseline data point id → value;
    ``patient_identifier`` is absent for an anonymous patient."""

    request_id: str
    care_flow_definition_id: str
    patient_id: str
    patient_identifier: Identifier | None = None
    data_points: dict[str, Any] = Field(default_factory=dict)


class RemotePatientInput(BaseModel):
    """Input of ``PatientResolutionWorkflow`` and its activity: find-or-create one patient in a
    remote backend. ``identifier`` None: an anonymous patient for ``request_id``."""

    backend: str = "awell"
    request_id: str
    identifier: Identifier | None = None
    profile: dict[str, Any] = Field(default_factory=dict)


class RemotePatientResult(BaseModel):
    patient_id: str
    created: bool
    attempt: int = 1
