"""What the service answers: public views of stored models, mapping and preview results, the
built-in backend's patients and care flows, and the page of a list answer.

The models the store saves and the inputs they are made from are in ``careflow.models``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from careflow.conditions.models import ConditionGroup, ConditionsOutcome, Debounce, IgnoredReason
from careflow.models import (
    DataPointMapping,
    Identifier,
    PatientIdentifierMapping,
    PatientProfileMapping,
    RequestError,
    RequestStatus,
)


class SignaturePublic(BaseModel):
    scheme: str
    header: str | None = None
    algorithm: str | None = None
    encoding: str | None = None
    prefix: str | None = None
    has_secret: bool


class WebhookPublic(BaseModel):
    id: str
    name: str
    care_flow_definition_id: str
    enabled: bool
    data_point_mappings: list[DataPointMapping]
    patient_identifier: PatientIdentifierMapping | None
    patient_profile: PatientProfileMapping | None
    default_region: str | None
    delivery_id_path: str | None
    signature: SignaturePublic | None
    conditions: ConditionGroup | None = None
    skip_if_enrolled: bool = False
    debounce: Debounce | None = None
    url: str
    test_url: str
    created_at: datetime
    updated_at: datetime


# --- validation / mapping results --------------------------------------------------------------


class MappingResult(BaseModel):
    """What a webhook's mappings give for one payload (contract §5, §6).

    ``data_points`` maps data point definition id → coerced value (absent optional points omitted);
    ``patient_identifier`` is the extracted identifier, or None (no mapping and no body field);
    ``profile`` holds the mapped patient profile fields that coerced cleanly.
    """

    data_points: dict[str, Any] = Field(default_factory=dict)
    patient_identifier: Identifier | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    errors: list[RequestError] = Field(default_factory=list)


class PreviewAnswer(BaseModel):
    """``conditions`` is the conditions' verdict with each rule's outcome; ``reasons`` say why
    the verdict is IGNORED."""

    verdict: RequestStatus
    errors: list[RequestError]
    data_points: dict[str, Any]
    patient_identifier: Identifier | None
    conditions: ConditionsOutcome | None = None
    reasons: list[IgnoredReason] = Field(default_factory=list)


# --- patients and care flows (built-in backend) -------------------------------------------------


class Patient(BaseModel):
    id: str
    identifiers: list[Identifier]
    anonymous: bool
    profile: dict[str, Any]
    created_at: datetime


class CareFlow(BaseModel):
    """A started care flow. ``backend`` says where it runs; for the temporal backend ``status``
    is the workflow execution's status (``RUNNING``, ``COMPLETED``, …) and ``ui_url`` links to it
    in the Temporal UI."""

    id: str
    care_flow_definition_id: str
    patient_id: str
    data_points: dict[str, Any]
    request_id: str
    started_at: datetime
    backend: str = "builtin"
    status: str | None = None
    ui_url: str | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list answer; ``next_page_token`` is opaque, null on the last page."""

    items: list[T]
    next_page_token: str | None = None
