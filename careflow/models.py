"""Domain models shared by the API, the workflow, the activities and the store.

Vocabulary follows the product contract (see ``docs/architecture.md``): identifier systems are FHIR
``Identifier.system`` URIs, care flow definitions own baseline data point definitions,
webhooks map payload fields to those data points with JSONPath.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from careflow.conditions.models import (
    ConditionGroup,
    Debounce,
)
from careflow.text import check_text

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _no_nul(value: Any) -> Any:
    """Refuse U+0000 and lone surrogates anywhere in a text field (nested lists and objects
    included): PostgreSQL text cannot hold them, a database error would quote the value, and a
    lone surrogate cannot be encoded as UTF-8 in an answer (``careflow.text``)."""
    return check_text(value)


class StoredModel(BaseModel):
    """Base of the models the store saves: unknown fields are refused, and no text holds NUL or
    a lone surrogate."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _text_without_nul(self) -> StoredModel:
        # After the fields' own checks, so their more precise messages come first.
        return _no_nul(self)  # type: ignore[no-any-return]


class RequestStatus(StrEnum):
    """Request statuses, exact strings of contract §3."""

    RECEIVED = "RECEIVED"
    SCHEDULED = "SCHEDULED"
    REJECTED = "REJECTED"
    TEST = "TEST"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    IGNORED = "IGNORED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        RequestStatus.REJECTED,
        RequestStatus.TEST,
        RequestStatus.SUCCESS,
        RequestStatus.FAILED,
        RequestStatus.IGNORED,
    }
)


class ValueType(StrEnum):
    """Baseline data point value types (contract §5)."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    TELEPHONE = "telephone"
    STRINGS_ARRAY = "strings_array"
    NUMBERS_ARRAY = "numbers_array"
    JSON = "json"


class RequestError(BaseModel):
    """One problem with a request, as reported to senders, logs and the timeline.

    ``message`` never quotes payload values (they may be PHI); ``code`` is a stable snake_case code.
    """

    code: str
    message: str
    data_point_definition_id: str | None = None
    path: str | None = None


# --- identifier systems -------------------------------------------------------------------------


def _check_absolute_uri(value: str) -> str:
    """Require an absolute URI (RFC 3986 §4.3: a scheme, then ``:``, then something), with no
    whitespace or control characters (RFC 3986 §2 allows neither unencoded)."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must be an absolute URI without spaces or control characters")
    scheme, sep, rest = value.partition(":")
    if not sep or not rest or not scheme or not scheme[0].isalpha():
        raise ValueError("must be an absolute URI, e.g. https://example-hospital.org/mrn")
    if not all(c.isalnum() or c in "+-." for c in scheme):
        raise ValueError("must be an absolute URI, e.g. https://example-hospital.org/mrn")
    return value


class IdentifierSystemCreate(StoredModel):
    """An identifier namespace, as FHIR ``Identifier.system``; ``name`` is a label and route key."""

    name: str = Field(pattern=SLUG_PATTERN)
    system: str = Field(min_length=3, max_length=2048)
    description: str = ""

    _system_is_uri = field_validator("system")(_check_absolute_uri)


class IdentifierSystemUpdate(StoredModel):
    system: str = Field(min_length=3, max_length=2048)
    description: str = ""

    _system_is_uri = field_validator("system")(_check_absolute_uri)


class IdentifierSystem(IdentifierSystemCreate):
    pass


class Identifier(BaseModel):
    """A FHIR-style identifier: ``system`` (absolute URI) and ``value`` (non-empty string)."""

    system: str
    value: str

    _text_without_nul = field_validator("system", "value", mode="after")(_no_nul)


# --- care flow definitions ---------------------------------------------------------------------


class ValueRange(StoredModel):
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)


class DataPointDefinition(StoredModel):
    """A baseline data point of a care flow definition (contract §2, §5)."""

    id: str = Field(min_length=1, max_length=128)
    title: str = ""
    value_type: ValueType
    optional: bool = False
    possible_values: list[Any] | None = None
    range: ValueRange | None = None

    @field_validator("possible_values")
    @classmethod
    def _finite(cls, value: list[Any] | None) -> list[Any] | None:
        if value and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ValueError("possible values must be finite")
        return value


class BuiltinBackendConfig(StoredModel):
    """Care flows start as rows in the service's own database (the default)."""

    kind: Literal["builtin"] = "builtin"


class TemporalBackendConfig(StoredModel):
    """Care flows are workflows the user runs: ``workflow_type`` started on ``task_queue``."""

    kind: Literal["temporal"]
    workflow_type: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    task_queue: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")


class AwellBackendConfig(StoredModel):
    """Care flows are pathways in Awell's Orchestration API (credentials from settings).

    ``data_point_definition_ids`` maps a local data point id to Awell's data point definition id
    when they differ (the import fills it: local ids are Awell's keys); ids not in it are sent
    as they are.
    """

    kind: Literal["awell"]
    pathway_definition_id: str = Field(min_length=1, max_length=200)
    release_id: str | None = Field(default=None, min_length=1, max_length=200)
    data_point_definition_ids: dict[str, str] = Field(default_factory=dict)


BackendConfig = Annotated[
    BuiltinBackendConfig | TemporalBackendConfig | AwellBackendConfig,
    Field(discriminator="kind"),
]


class CareFlowDefinitionUpdate(StoredModel):
    title: str
    published: bool = False
    backend: BackendConfig = Field(default_factory=BuiltinBackendConfig)
    data_point_definitions: list[DataPointDefinition] = Field(default_factory=list)

    @field_validator("data_point_definitions")
    @classmethod
    def _unique_ids(cls, value: list[DataPointDefinition]) -> list[DataPointDefinition]:
        ids = [d.id for d in value]
        if len(ids) != len(set(ids)):
            raise ValueError("data point definition ids must be unique")
        return value


class CareFlowDefinitionCreate(CareFlowDefinitionUpdate):
    id: str = Field(pattern=SLUG_PATTERN)


class CareFlowDefinition(CareFlowDefinitionCreate):
    pass


class CareFlowDefinitionReplace(CareFlowDefinitionUpdate):
    """The body of ``PUT /v1/care-flow-definitions/{id}``: every field a client sets is required
    (an omitted ``published`` must not unpublish), and the read-only ``id`` a GET returned is
    accepted when it equals the stored one (checked by the service)."""

    published: bool
    data_point_definitions: list[DataPointDefinition]
    id: str | None = None


class IdentifierSystemReplace(IdentifierSystemUpdate):
    """The body of ``PUT /v1/identifier-systems/{name}``: ``system`` and ``description`` are
    required (a PUT replaces both), and the read-only ``name`` a GET returned is accepted when it
    equals the stored one."""

    description: str
    name: str | None = None


# --- webhooks ----------------------------------------------------------------------------------


class DataPointMapping(StoredModel):
    """``path`` is a JSONPath (jsonpath-ng extended syntax) evaluated on the parsed body."""

    data_point_definition_id: str
    path: str = Field(min_length=1)
    date_format: str | None = None


class PatientIdentifierMapping(StoredModel):
    """Where the patient identifier is: one of ``system`` / ``system_path``, and ``value_path``."""

    system: str | None = None
    system_path: str | None = None
    value_path: str = Field(min_length=1)

    @model_validator(mode="after")
    def _exactly_one_system(self) -> PatientIdentifierMapping:
        if (self.system is None) == (self.system_path is None):
            raise ValueError("give exactly one of system, system_path")
        if self.system is not None:
            _check_absolute_uri(self.system)
        return self


class PatientProfileMapping(StoredModel):
    """JSONPaths to profile fields used when a new patient is created."""

    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None
    email: str | None = None
    phone: str | None = None
    sex: str | None = None
    preferred_language: str | None = None


SignatureScheme = Literal["standard-webhooks", "hmac", "api-key"]


class SignatureConfig(StoredModel):
    """How a webhook's requests are authenticated. ``secret`` is write-only."""

    scheme: str
    secret: str | None = None
    header: str | None = None
    algorithm: str | None = None
    encoding: str | None = None
    prefix: str | None = None


class WebhookFields(StoredModel):
    """Fields a client may set on a webhook (create and merge-patch)."""

    name: str = Field(min_length=1, max_length=200)
    care_flow_definition_id: str = Field(pattern=SLUG_PATTERN)
    data_point_mappings: list[DataPointMapping] = Field(default_factory=list)
    patient_identifier: PatientIdentifierMapping | None = None
    patient_profile: PatientProfileMapping | None = None
    default_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        """A region libphonenumber knows (ISO 3166-1 alpha-2), for national-format numbers."""
        if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("default_region must be a region code phonenumbers supports")
        return value

    delivery_id_path: str | None = None
    signature: SignatureConfig | None = None
    # Trigger conditions, enrollment rule, debounce (careflow.conditions; contract §5b).
    conditions: ConditionGroup | None = None
    skip_if_enrolled: bool = Field(default=False, strict=True)  # "yes" / 1 are refused
    debounce: Debounce | None = None


class WebhookCreate(WebhookFields):
    pass


class Webhook(WebhookFields):
    """A stored webhook, secrets included; never returned as is."""

    id: str
    enabled: bool = False
    deleted: bool = False
    created_at: datetime
    updated_at: datetime


# --- test payloads and previews ------------------------------------------------------------------


class TestPayloadPublic(BaseModel):
    """A kept test request: what a user builds mappings from (contract §4)."""

    __test__ = False  # not a pytest test class

    request_id: str
    received_at: datetime
    verdict: RequestStatus
    payload: Any = None


class TestPayload(TestPayloadPublic):
    __test__ = False

    webhook_id: str


class PreviewRequest(BaseModel):
    """A proposed mapping to evaluate against a kept test payload, saving nothing."""

    model_config = ConfigDict(extra="forbid")

    data_point_mappings: list[DataPointMapping] | None = None
    patient_identifier: PatientIdentifierMapping | None = None
    conditions: ConditionGroup | None = None
    request_id: str | None = None
