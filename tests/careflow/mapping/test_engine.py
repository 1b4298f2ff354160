"""The request-time entry point ``map_payload`` (``careflow.mapping.engine``, contract §5, §6)."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping.codes import ERROR_CODES
from careflow.mapping.engine import map_payload
from careflow.models import (
    DataPointDefinition,
    DataPointMapping,
    PatientIdentifierMapping,
    PatientProfileMapping,
    ValueType,
)
from tests.careflow.mapping.factories import definition, webhook


def test_required_point_without_mapping() -> None:
    result = map_payload(
        webhook(),
        definition(
            DataPointDefinition(id="needed", value_type="string"),
            DataPointDefinition(id="extra", value_type="string", optional=True),
        ),
        {},
    )
    assert [(e.code, e.data_point_definition_id, e.path) for e in result.errors] == [
        ("missing_required_data_point", "needed", None)
    ]
    assert result.data_points == {}


def test_unknown_mapping_ids_are_ignored_and_first_mapping_wins() -> None:
    result = map_payload(
        webhook(
            [
                DataPointMapping(data_point_definition_id="ghost", path="$.a"),
                DataPointMapping(data_point_definition_id="dp", path="$.a"),
                DataPointMapping(data_point_definition_id="dp", path="$.b"),
            ]
        ),
        definition(DataPointDefinition(id="dp", value_type="string")),
        {"a": "from a", "b": "from b"},
    )
    assert result.errors == []
    assert result.data_points == {"dp": "from a"}


def test_data_points_follow_definition_order() -> None:
    result = map_payload(
        webhook([DataPointMapping(data_point_definition_id=i, path=f"$.{i}") for i in "abc"]),
        definition(*(DataPointDefinition(id=i, value_type="number") for i in "cab")),
        {"a": 1, "b": 2, "c": 3},
    )
    assert list(result.data_points.items()) == [("c", 3), ("a", 1), ("b", 2)]


@pytest.mark.parametrize(
    ("points", "body", "expected_errors", "expected_points"),
    [
        pytest.param(
            [
                ("n", "number", "$.n"),
                ("b", "boolean", "$.b"),
                ("d", "date", "$.d"),
                ("t", "telephone", "$.t"),
                ("s", "string", "$.s"),
                ("m", "string", "$.m"),
                ("good", "number", "$.good"),
            ],
            {"n": "x", "b": "x", "d": "x", "t": "x", "s": {}, "good": 1},
            [
                ("invalid_number", "n"),
                ("invalid_boolean", "b"),
                ("invalid_date", "d"),
                ("invalid_telephone", "t"),
                ("invalid_string", "s"),
                ("missing_required_data_point", "m"),
            ],
            {"good": 1},
            id="values",
        ),
        pytest.param(
            [
                ("bad", "string", "$.a["),
                ("sorted", "json", "$.a[/x]"),
                ("fine", "number", "$.b"),
            ],
            {"a": [{"x": 1}, {"x": "mixed types cannot be sorted"}], "b": 2},
            [("invalid_path", "bad"), ("path_evaluation_failed", "sorted")],
            {"fine": 2},
            id="paths-failing-at-request-time",
        ),
    ],
)
def test_every_problem_is_reported(
    points: list[tuple[str, str, str]],
    body: Any,
    expected_errors: list[tuple[str, str]],
    expected_points: dict[str, Any],
) -> None:
    result = map_payload(
        webhook([DataPointMapping(data_point_definition_id=i, path=path) for i, _, path in points]),
        definition(*(DataPointDefinition(id=i, value_type=t) for i, t, _ in points)),
        body,
    )
    assert [(e.code, e.data_point_definition_id) for e in result.errors] == expected_errors
    assert result.data_points == expected_points


@pytest.mark.parametrize(
    ("region", "phone", "expected"),
    [(None, "(415) 555-2671", "+14155552671"), ("AU", "(03) 5550 0101", "+61355500101")],
)
def test_default_region_reads_national_numbers(
    region: str | None, phone: str, expected: str
) -> None:
    result = map_payload(
        webhook(
            [DataPointMapping(data_point_definition_id="t", path="$.phone")],
            patient_profile=PatientProfileMapping(phone="$.phone"),
            default_region=region,
        ),
        definition(DataPointDefinition(id="t", value_type="telephone")),
        {"phone": phone},
    )
    assert result.errors == []
    assert result.data_points == {"t": expected}
    assert result.profile == {"phone": expected}


def test_result_has_data_points_identifier_profile_and_their_errors_in_that_order() -> None:
    result = map_payload(
        webhook(
            [
                DataPointMapping(data_point_definition_id="n", path="$.n"),
                DataPointMapping(data_point_definition_id="x", path="$.x"),
            ],
            patient_identifier=PatientIdentifierMapping(system="urn:x", value_path="$.mrn"),
            patient_profile=PatientProfileMapping(first_name="$.first", sex="$.sex"),
        ),
        definition(
            DataPointDefinition(id="n", value_type="number"),
            DataPointDefinition(id="x", value_type="number"),
        ),
        {"n": "7", "x": "seven", "mrn": 12, "first": "Ann", "sex": "robot"},
    )
    assert result.data_points == {"n": 7}
    assert result.patient_identifier is not None
    assert result.patient_identifier.model_dump() == {"system": "urn:x", "value": "12"}
    assert result.profile == {"first_name": "Ann"}
    assert [e.code for e in result.errors] == ["invalid_number", "invalid_profile_field"]

    result = map_payload(
        webhook(
            patient_identifier=PatientIdentifierMapping(system="urn:x", value_path="$.mrn"),
            patient_profile=PatientProfileMapping(sex="$.sex"),
        ),
        definition(),
        {"sex": "robot"},
    )
    assert [e.code for e in result.errors] == [
        "missing_patient_identifier",
        "invalid_profile_field",
    ]


SECRET = "Jane-Secret-Doe-555"


@pytest.mark.parametrize("value_type", [t.value for t in ValueType])
def test_messages_never_quote_payload_values(value_type: str) -> None:
    values = [SECRET, {"k": SECRET}, [SECRET, {"k": SECRET}]]
    point = DataPointDefinition(id="dp", value_type=value_type, possible_values=["other"])
    for value in values:
        result = map_payload(
            webhook(
                [DataPointMapping(data_point_definition_id="dp", path="$.v")],
                patient_identifier=PatientIdentifierMapping(system_path="$.v", value_path="$.v"),
                patient_profile=PatientProfileMapping(
                    **{field: "$.v" for field in PatientProfileMapping.model_fields}
                ),
            ),
            definition(point),
            {"v": value},
        )
        assert result.errors
        for error in result.errors:
            assert SECRET not in error.model_dump_json()


@pytest.mark.parametrize(
    "body", [None, 0, 1.5, True, "text", [], [1, {"v": 2}], {"v": {"deep": [[[]]]}}]
)
def test_any_json_body_is_accepted(body: Any) -> None:
    points = [DataPointDefinition(id=t.value, value_type=t, optional=True) for t in ValueType]
    result = map_payload(
        webhook([DataPointMapping(data_point_definition_id=p.id, path="$.v") for p in points]),
        definition(*points),
        body,
    )
    assert all(e.code in ERROR_CODES for e in result.errors)
    assert result.patient_identifier is None
