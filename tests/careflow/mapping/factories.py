"""Builders shared by the mapping tests: webhooks, definitions, and one data point mapped alone."""

from __future__ import annotations

from typing import Any, NamedTuple

from careflow.mapping.codes import DEFAULT_REGION, ERROR_CODES
from careflow.mapping.data_points import _map_data_point
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    PatientIdentifierMapping,
    PatientProfileMapping,
    RequestError,
    ValueRange,
    WebhookFields,
)

PROFILE = PatientProfileMapping(
    first_name="$.first",
    last_name="$.last",
    birth_date="$.born",
    email="$.email",
    phone="$.phone",
    sex="$.sex",
    preferred_language="$.lang",
)
"""A profile mapping with every field, each read from its own top-level key."""


def webhook(
    mappings: list[DataPointMapping] | None = None,
    *,
    patient_identifier: PatientIdentifierMapping | None = None,
    patient_profile: PatientProfileMapping | None = None,
    default_region: str | None = None,
    delivery_id_path: str | None = None,
) -> WebhookFields:
    return WebhookFields(
        name="test",
        care_flow_definition_id="flow",
        data_point_mappings=mappings or [],
        patient_identifier=patient_identifier,
        patient_profile=patient_profile,
        default_region=default_region,
        delivery_id_path=delivery_id_path,
    )


def definition(*points: DataPointDefinition) -> CareFlowDefinition:
    return CareFlowDefinition(id="flow", title="Flow", data_point_definitions=list(points))


class PointResult(NamedTuple):
    """What mapping one data point leaves behind: the stored values and the errors."""

    data_points: dict[str, Any]
    errors: list[RequestError]


def map_body(
    body: Any,
    value_type: str,
    path: str = "$.v",
    *,
    date_format: str | None = None,
    region: str = DEFAULT_REGION,
    optional: bool = False,
    possible_values: list[Any] | None = None,
    value_range: ValueRange | None = None,
) -> PointResult:
    """Map ``body`` to one data point ``dp`` read at ``path``."""
    point = DataPointDefinition(
        id="dp",
        value_type=value_type,
        optional=optional,
        possible_values=possible_values,
        range=value_range,
    )
    data_points: dict[str, Any] = {}
    errors: list[RequestError] = []
    _map_data_point(point, path, date_format, region, body, data_points, errors)
    return PointResult(data_points, errors)


def map_one(value: Any, value_type: str, **kwargs: Any) -> PointResult:
    """Map ``{"v": value}`` to one data point ``dp`` (``path`` defaults to ``$.v``)."""
    return map_body({"v": value}, value_type, **kwargs)


def ok(value: Any, value_type: str, **kwargs: Any) -> Any:
    """The stored value, asserting that there is no error."""
    result = map_one(value, value_type, **kwargs)
    assert result.errors == [], [e.message for e in result.errors]
    return result.data_points["dp"]


def error_code(value: Any, value_type: str, **kwargs: Any) -> str:
    """The single error code, asserting that there is no value and that the error names ``dp``."""
    result = map_one(value, value_type, **kwargs)
    assert "dp" not in result.data_points
    assert len(result.errors) == 1, [e.message for e in result.errors]
    error = result.errors[0]
    assert error.data_point_definition_id == "dp"
    assert error.path == kwargs.get("path", "$.v")
    assert error.code in ERROR_CODES
    return error.code
