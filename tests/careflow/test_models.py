"""The validators of the domain models: what configuration the API refuses before storing it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from careflow.models import (
    CareFlowDefinitionCreate,
    CareFlowDefinitionUpdate,
    DataPointDefinition,
    Identifier,
    IdentifierSystemCreate,
    IdentifierSystemUpdate,
    PatientIdentifierMapping,
    RequestStatus,
    ValueRange,
    WebhookFields,
)


def refusal(model: type[BaseModel], **data: Any) -> str:
    """The messages of the validation error ``data`` gets, joined."""
    with pytest.raises(ValidationError) as raised:
        model(**data)
    return "; ".join(e["msg"] for e in raised.value.errors())


# --- identifier system URIs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "system",
    [
        "https://example-hospital.org/mrn",
        "urn:oid:1.2.36.146.595.217.0.1",
        "urn:uuid:8f6c0d3e-2c1b-4c57-9c44-9a1f3e8b5d21",
        "http://hl7.org/fhir/sid/us-ssn",
        "x-local+v1.2:mrn",
    ],
)
def test_absolute_uris_are_accepted(system: str) -> None:
    assert IdentifierSystemCreate(name="mrn", system=system).system == system
    assert IdentifierSystemUpdate(system=system).system == system


@pytest.mark.parametrize(
    "system",
    [
        "example-hospital.org/mrn",  # no scheme
        "://x",  # empty scheme
        "1http://x",  # a scheme starts with a letter
        "my_scheme:x",  # "_" is not a scheme character
        "urn:",  # nothing after the colon
        "http://x y",
        "urn:oid:1.2 ",
        "urn:a\x00b",
        "urn:x\n",
        "urn:x\x7f",
        "urn:\tx",
    ],
)
def test_other_systems_are_refused(system: str) -> None:
    assert "absolute URI" in refusal(IdentifierSystemCreate, name="mrn", system=system)
    assert "absolute URI" in refusal(IdentifierSystemUpdate, system=system)


@pytest.mark.parametrize("name", ["MRN", "-mrn", "", "a" * 65, "mr n"])
def test_identifier_system_names_are_slugs(name: str) -> None:
    refusal(IdentifierSystemCreate, name=name, system="urn:x:y")


def test_unknown_fields_are_refused() -> None:
    assert "Extra inputs" in refusal(IdentifierSystemCreate, name="mrn", system="urn:x:y", x=1)


# --- care flow definitions ----------------------------------------------------------------------


def test_possible_values_must_be_finite() -> None:
    message = refusal(
        DataPointDefinition, id="p", value_type="number", possible_values=[1.5, math.nan]
    )
    assert "finite" in message
    refusal(DataPointDefinition, id="p", value_type="number", possible_values=[math.inf])
    ok = DataPointDefinition(id="p", value_type="json", possible_values=[1, 2.5, "a", None, [1]])
    assert ok.possible_values == [1, 2.5, "a", None, [1]]


@pytest.mark.parametrize("bound", [math.nan, math.inf, -math.inf])
def test_range_bounds_must_be_finite(bound: float) -> None:
    refusal(ValueRange, min=bound)
    refusal(ValueRange, max=bound)


def test_data_point_definition_ids_must_be_unique() -> None:
    points = [
        {"id": "age", "value_type": "number"},
        {"id": "age", "value_type": "string"},
    ]
    assert "unique" in refusal(CareFlowDefinitionUpdate, title="t", data_point_definitions=points)
    assert "unique" in refusal(
        CareFlowDefinitionCreate, id="intake", title="t", data_point_definitions=points
    )
    points[1]["id"] = "Age"  # ids are case-sensitive
    distinct = CareFlowDefinitionUpdate(title="t", data_point_definitions=points)
    assert [d.id for d in distinct.data_point_definitions] == ["age", "Age"]


# --- webhooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"value_path": "$.mrn"},
        {"system": "urn:x:y", "system_path": "$.sys", "value_path": "$.mrn"},
    ],
)
def test_a_patient_identifier_mapping_has_exactly_one_system(fields: dict[str, str]) -> None:
    assert "exactly one of system, system_path" in refusal(PatientIdentifierMapping, **fields)


def test_a_literal_identifier_system_must_be_an_absolute_uri() -> None:
    assert "absolute URI" in refusal(PatientIdentifierMapping, system="mrn", value_path="$.mrn")
    by_path = PatientIdentifierMapping(system_path="not a uri, a path", value_path="$.mrn")
    assert by_path.system is None


@pytest.mark.parametrize(("region", "accepted"), [("US", True), ("NL", True), ("ZZ", False)])
def test_default_region_must_be_one_phonenumbers_knows(region: str, accepted: bool) -> None:
    data = {"name": "h", "care_flow_definition_id": "intake", "default_region": region}
    if accepted:
        assert WebhookFields(**data).default_region == region
    else:
        assert "phonenumbers" in refusal(WebhookFields, **data)


@pytest.mark.parametrize("region", ["us", "USA", "U"])
def test_default_region_is_two_upper_case_letters(region: str) -> None:
    refusal(WebhookFields, name="h", care_flow_definition_id="intake", default_region=region)


# --- request statuses ---------------------------------------------------------------------------


def test_terminal_statuses() -> None:
    terminal = {s for s in RequestStatus if s.terminal}
    assert terminal == {
        RequestStatus.SUCCESS,
        RequestStatus.REJECTED,
        RequestStatus.TEST,
        RequestStatus.FAILED,
        RequestStatus.IGNORED,
    }


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (IdentifierSystemCreate, {"name": "mrn", "system": "urn:x", "description": "a\x00b"}),
        (CareFlowDefinitionCreate, {"id": "intake", "title": "t\x00"}),
        (Identifier, {"system": "urn:x", "value": "12\x0034"}),
    ],
)
def test_stored_text_refuses_nul(model: type[BaseModel], fields: dict[str, Any]) -> None:
    # PostgreSQL text cannot hold U+0000; the driver's error would quote the value.
    with pytest.raises(ValidationError, match="NUL"):
        model.model_validate(fields)
