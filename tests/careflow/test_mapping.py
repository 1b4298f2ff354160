"""Unit tests of the mapping engine: value types (contract §5), identifiers (§6), profile, paths."""

from __future__ import annotations

from typing import Any

import pytest

from careflow import mapping
from careflow.mapping import (
    ERROR_CODES,
    ISO_639_1_CODES,
    InvalidPathError,
    check_paths,
    compile_path,
    find_first,
    map_payload,
)
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    MappingResult,
    PatientIdentifierMapping,
    PatientProfileMapping,
    ValueRange,
    WebhookFields,
)

# --- helpers -------------------------------------------------------------------------------------


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


def map_one(
    value: Any,
    value_type: str,
    *,
    optional: bool = False,
    date_format: str | None = None,
    possible_values: list[Any] | None = None,
    value_range: ValueRange | None = None,
    default_region: str | None = None,
    path: str = "$.v",
) -> MappingResult:
    """Map ``{"v": value}`` to one data point ``dp``."""
    return map_payload(
        webhook(
            [DataPointMapping(data_point_definition_id="dp", path=path, date_format=date_format)],
            default_region=default_region,
        ),
        definition(
            DataPointDefinition(
                id="dp",
                value_type=value_type,
                optional=optional,
                possible_values=possible_values,
                range=value_range,
            )
        ),
        {"v": value},
    )


def ok(value: Any, value_type: str, **kwargs: Any) -> Any:
    """The stored value, asserting that there is no error."""
    result = map_one(value, value_type, **kwargs)
    assert result.errors == [], [e.message for e in result.errors]
    return result.data_points["dp"]


def error_code(value: Any, value_type: str, **kwargs: Any) -> str:
    """The single error code, asserting that there is no value."""
    result = map_one(value, value_type, **kwargs)
    assert "dp" not in result.data_points
    assert len(result.errors) == 1, [e.message for e in result.errors]
    error = result.errors[0]
    assert error.data_point_definition_id == "dp"
    assert error.path == kwargs.get("path", "$.v")
    assert error.code in ERROR_CODES
    return error.code


# --- number (RFC 8259 §6 grammar) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (-7, -7),
        (0, 0),
        (1.5, 1.5),
        (-3.5, -3.5),
        ("42", 42),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        ("1E+2", 100.0),
        ("2.5e-3", 0.0025),
        (" 42\n", 42),
        ("\t-0 ", 0),
        ("12345678901234567890123", 12345678901234567890123),
    ],
)
def test_number_accepts(value: Any, expected: Any) -> None:
    actual = ok(value, "number")
    assert actual == expected
    assert type(actual) is type(expected)


@pytest.mark.parametrize(
    "value",
    [
        "1_000",
        "inf",
        "-inf",
        "Infinity",
        "NaN",
        "nan",
        "+1",
        "01",
        "1.",
        ".5",
        "1e",
        "0x10",
        "",
        "   ",
        "4 2",
        "١٢",  # Arabic-Indic digits: int() would accept them
        "1e400",  # finite grammar, infinite float
        pytest.param("9" * 5000, id="5000-digits"),  # beyond Python's int/str conversion limit
        True,
        False,
        float("inf"),
        float("nan"),
        [1],
        {"n": 1},
    ],
)
def test_number_rejects(value: Any) -> None:
    assert error_code(value, "number") == "invalid_number"


def test_number_range_and_possible_values() -> None:
    bounds = ValueRange(min=0, max=10)
    assert ok(0, "number", value_range=bounds) == 0
    assert ok("10", "number", value_range=bounds) == 10
    assert error_code(10.5, "number", value_range=bounds) == "out_of_range"
    assert error_code(-1, "number", value_range=bounds) == "out_of_range"
    assert ok(1.0, "number", possible_values=[1, 2]) == 1.0  # JSON equality: 1 = 1.0
    assert error_code(3, "number", possible_values=[1, 2]) == "not_in_possible_values"
    assert error_code(1, "number", possible_values=[True]) == "not_in_possible_values"


# --- boolean -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        (" Yes ", True),
        ("no", False),
        ("T", True),
        ("f", False),
        ("y", True),
        ("N", False),
        ("1", True),
        (" 0\n", False),
    ],
)
def test_boolean_accepts(value: Any, expected: bool) -> None:
    assert ok(value, "boolean") is expected


@pytest.mark.parametrize("value", [2, -1, 1.0, 0.0, "maybe", "", "on", "yes!", [], {}, [True]])
def test_boolean_rejects(value: Any) -> None:
    assert error_code(value, "boolean") == "invalid_boolean"


def test_boolean_possible_values_are_typed() -> None:
    assert ok("yes", "boolean", possible_values=[True]) is True
    assert error_code("no", "boolean", possible_values=[True]) == "not_in_possible_values"
    assert error_code(True, "boolean", possible_values=[1]) == "not_in_possible_values"


# --- string --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("du Exemplé", "du Exemplé"),
        ("  kept as sent  ", "  kept as sent  "),
        ("", ""),
        (1, "1"),
        (-20, "-20"),
        (1.5, "1.5"),
        (1e16, "1e+16"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_string_accepts(value: Any, expected: str) -> None:
    assert ok(value, "string") == expected


@pytest.mark.parametrize(
    "value",
    [{}, {"a": "b"}, [], ["a"], float("nan"), pytest.param(10**5000, id="int-5001-digits")],
)
def test_string_rejects(value: Any) -> None:
    assert error_code(value, "string") == "invalid_string"


def test_string_possible_values() -> None:
    assert ok("a", "string", possible_values=["a", "b"]) == "a"
    assert error_code("A", "string", possible_values=["a", "b"]) == "not_in_possible_values"
    assert ok(1, "string", possible_values=["1"]) == "1"  # compared after coercion
    assert ok("x", "string", possible_values=[]) == "x"  # empty list: no constraint
    assert ok("x", "string", value_range=ValueRange(min=5)) == "x"  # range: numbers only


# --- date (ISO 8601 extended; date_format) -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1971-03-14", "1971-03-14"),
        (" 2005-10-15 ", "2005-10-15"),
        ("2023-04-14T09:22:57.517+00:00", "2023-04-14T09:22:57.517000Z"),
        ("2023-04-14T09:22:56Z", "2023-04-14T09:22:56Z"),
        ("1971-03-14T14:35:45-05:00", "1971-03-14T19:35:45Z"),
        ("2023-01-01T01:00+02:00", "2022-12-31T23:00:00Z"),
        ("2023-04-14T09:22Z", "2023-04-14T09:22:00Z"),
        ("2023-04-14T09:22:57,25Z", "2023-04-14T09:22:57.250000Z"),
        ("2023-04-14T09:22:57.1234567Z", "2023-04-14T09:22:57.123456Z"),
        ("0999-01-01", "0999-01-01"),
    ],
)
def test_date_accepts_iso_8601_extended(value: str, expected: str) -> None:
    assert ok(value, "date") == expected


@pytest.mark.parametrize(
    "value",
    [
        "200808151030-0700",  # basic format: fromisoformat reads it as another instant
        "20080815",
        "2008-08-15T10:30:00",  # date-time without offset needs a date_format
        "2023-04-14 09:22:57Z",  # space separator is not ISO 8601 extended
        "2023-04-14t09:22:57z",
        "2023-W01-1",
        "2023-02-30",
        "2023-13-01",
        "2023-04-14T24:00Z",
        "2023-04-14T23:59:60Z",
        "2023-04-14T09:22:57+0200",
        "2023-04-14T09:22:57+24:00",
        "0001-01-01T00:30+01:00",  # before year 1 in UTC
        "14/03/1971",
        "yesterday",
        "",
        1684920600,
        True,
        ["2023-01-01"],
    ],
)
def test_date_rejects_without_format(value: Any) -> None:
    assert error_code(value, "date") == "invalid_date"


@pytest.mark.parametrize(
    ("value", "date_format", "expected"),
    [
        ("14/03/1971", "%d/%m/%Y", "1971-03-14"),
        ("Mar 14 1971", "%b %d %Y", "1971-03-14"),
        ("2023-04-14 09:22:57", "%Y-%m-%d %H:%M:%S", "2023-04-14T09:22:57Z"),  # naive → UTC
        ("2008-08-15T10:30:00", "%Y-%m-%dT%H:%M:%S", "2008-08-15T10:30:00Z"),
        ("200808151030-0700", "%Y%m%d%H%M%z", "2008-08-15T17:30:00Z"),
        ("14.03.1971 14:35 +0100", "%d.%m.%Y %H:%M %z", "1971-03-14T13:35:00Z"),
        (1684920600, "epoch_s", "2023-05-24T09:30:00Z"),
        ("1684920600", "epoch_s", "2023-05-24T09:30:00Z"),
        (1684920600.5, "epoch_s", "2023-05-24T09:30:00.500000Z"),
        (1684920600538, "epoch_ms", "2023-05-24T09:30:00.538000Z"),
        (" 1684920600538 ", "epoch_ms", "2023-05-24T09:30:00.538000Z"),
        (0, "epoch_s", "1970-01-01T00:00:00Z"),
        (-86400, "epoch_s", "1969-12-31T00:00:00Z"),
        # ISO 8601 extended forms stay accepted with a date_format:
        ("2023-04-14T09:22:56Z", "%d/%m/%Y", "2023-04-14T09:22:56Z"),
        ("1971-03-14", "epoch_s", "1971-03-14"),
    ],
)
def test_date_with_format(value: Any, date_format: str, expected: str) -> None:
    assert ok(value, "date", date_format=date_format) == expected


@pytest.mark.parametrize(
    ("value", "date_format"),
    [
        ("1971-14-03", "%Y-%d-%m-x"),
        ("31/02/2020", "%d/%m/%Y"),
        (1684920600, "%d/%m/%Y"),
        (True, "epoch_s"),
        ("1_684_920_600", "epoch_s"),
        (1e20, "epoch_s"),
        (float("inf"), "epoch_ms"),
        ("soon", "epoch_ms"),
    ],
)
def test_date_with_format_rejects(value: Any, date_format: str) -> None:
    assert error_code(value, "date", date_format=date_format) == "invalid_date"


def test_date_possible_values_compare_normalised_text() -> None:
    allowed = ["2023-04-14T07:00:00Z"]
    assert ok("2023-04-14T09:00+02:00", "date", possible_values=allowed) == allowed[0]
    assert error_code("2023-04-14T09:00Z", "date", possible_values=allowed) == (
        "not_in_possible_values"
    )


# --- telephone (E.164 via phonenumbers) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+33 (261) 910042", None, "+33261910042"),  # explicit +CC wins over region US
        ("(415) 555-2671", None, "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("tel:+1-415-555-2671", None, "+14155552671"),
        ("(03) 5550 0101", "AU", "+61355500101"),
        ("020 7946 0958", "GB", "+442079460958"),
        (14155552671, None, "+14155552671"),
    ],
)
def test_telephone_accepts(value: Any, region: str | None, expected: str) -> None:
    assert ok(value, "telephone", default_region=region) == expected


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("(03) 5550 0101", None),  # parses as +1 0355500101 but is not a valid number
        ("12", None),
        ("not a phone", None),
        ("", None),
        ("+999 123 456", None),
        ("+1" + "5" * 300, None),
        (True, None),
        (-14155552671, None),
        (4155552671.0, None),
        (["+14155552671"], None),
    ],
)
def test_telephone_rejects(value: Any, region: str | None) -> None:
    assert error_code(value, "telephone", default_region=region) == "invalid_telephone"


# --- arrays --------------------------------------------------------------------------------------


def map_body(body: Any, value_type: str, path: str, **point: Any) -> MappingResult:
    return map_payload(
        webhook([DataPointMapping(data_point_definition_id="dp", path=path)]),
        definition(DataPointDefinition(id="dp", value_type=value_type, **point)),
        body,
    )


def test_array_takes_all_matches_in_document_order() -> None:
    body = {"items": [{"v": 3}, {"v": 1}, {"w": 9}, {"v": "2"}]}
    result = map_body(body, "numbers_array", "$.items[*].v")
    assert result.errors == []
    assert result.data_points["dp"] == [3, 1, 2]


def test_array_match_that_is_an_array_contributes_its_elements() -> None:
    body = {"items": [{"v": 1}, {"v": [2, 3]}, {"v": None}, {"v": [None, 4]}]}
    result = map_body(body, "numbers_array", "$.items[*].v")
    assert result.errors == []
    assert result.data_points["dp"] == [1, 2, 3, 4]  # null matches and null elements skipped


def test_array_single_match_of_an_array() -> None:
    assert map_body({"v": ["a", 1, True]}, "strings_array", "$.v").data_points["dp"] == [
        "a",
        "1",
        "true",
    ]


def test_empty_array_is_a_value() -> None:
    result = map_body({"v": []}, "strings_array", "$.v")
    assert result.errors == []
    assert result.data_points["dp"] == []


@pytest.mark.parametrize("body", [{}, {"v": None}, {"v": [None]}])
def test_array_absent_or_only_null(body: Any) -> None:
    result = map_body(body, "strings_array", "$.v")
    assert [e.code for e in result.errors] == (
        ["missing_required_data_point"] if body.get("v") is None else []
    )
    if body.get("v") == [None]:  # a present array whose elements are all null: empty list
        assert result.data_points["dp"] == []


def test_array_element_errors_name_indices_and_codes() -> None:
    body = {"v": [1, "x", [2], 50, 3]}
    result = map_body(
        body, "numbers_array", "$.v", range=ValueRange(max=10), possible_values=[1, 3, 50]
    )
    assert "dp" not in result.data_points
    by_code = {e.code: e for e in result.errors}
    assert set(by_code) == {"invalid_number", "out_of_range"}
    assert "index 1, 2" in by_code["invalid_number"].message
    assert "index 3" in by_code["out_of_range"].message
    assert all(e.path == "$.v" and e.data_point_definition_id == "dp" for e in result.errors)


def test_array_possible_values_per_element() -> None:
    result = map_body({"v": ["a", "b", "c"]}, "strings_array", "$.v", possible_values=["a", "b"])
    assert [e.code for e in result.errors] == ["not_in_possible_values"]
    assert "index 2" in result.errors[0].message
    assert (
        map_body({"v": ["a", "b"]}, "strings_array", "$.v", possible_values=["a", "b"]).errors == []
    )


def test_strings_array_rejects_objects() -> None:
    result = map_body({"v": [{"a": 1}]}, "strings_array", "$.v")
    assert [e.code for e in result.errors] == ["invalid_string"]


# --- json ----------------------------------------------------------------------------------------


def test_json_single_match_is_the_value() -> None:
    assert ok({"a": [1, {"b": None}]}, "json") == {"a": [1, {"b": None}]}
    assert ok([], "json") == []
    assert ok(False, "json") is False


def test_json_several_matches_are_a_list() -> None:
    body = {"items": [{"v": {"x": 1}}, {"v": None}, {"v": 2}]}
    assert map_body(body, "json", "$.items[*].v").data_points["dp"] == [{"x": 1}, 2]


def test_json_possible_values_use_json_equality() -> None:
    assert ok({"a": 1.0}, "json", possible_values=[{"a": 1}]) == {"a": 1.0}
    assert error_code({"a": True}, "json", possible_values=[{"a": 1}]) == "not_in_possible_values"


def test_json_refuses_non_finite_numbers() -> None:
    assert error_code(float("nan"), "json") == "invalid_json_value"


# --- absence, required, several problems ---------------------------------------------------------


@pytest.mark.parametrize("value_type", [t.value for t in mapping.ValueType])
def test_null_is_absent(value_type: str) -> None:
    assert error_code(None, value_type) == "missing_required_data_point"
    result = map_one(None, value_type, optional=True)
    assert result.errors == []
    assert result.data_points == {}


def test_missing_path_required_and_optional() -> None:
    assert error_code("x", "string", path="$.nope") == "missing_required_data_point"
    result = map_one("x", "string", path="$.nope", optional=True)
    assert (result.errors, result.data_points) == ([], {})


def test_single_valued_takes_first_non_null_match() -> None:
    body = {"a": [None, "first", "second"]}
    assert map_body(body, "string", "$.a[*]").data_points["dp"] == "first"


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


def test_every_problem_is_reported() -> None:
    points = [
        DataPointDefinition(id="n", value_type="number"),
        DataPointDefinition(id="b", value_type="boolean"),
        DataPointDefinition(id="d", value_type="date"),
        DataPointDefinition(id="t", value_type="telephone"),
        DataPointDefinition(id="s", value_type="string"),
        DataPointDefinition(id="m", value_type="string"),
        DataPointDefinition(id="good", value_type="number"),
    ]
    result = map_payload(
        webhook(
            [DataPointMapping(data_point_definition_id=p.id, path=f"$.{p.id}") for p in points]
        ),
        definition(*points),
        {"n": "x", "b": "x", "d": "x", "t": "x", "s": {}, "good": 1},
    )
    assert [(e.code, e.data_point_definition_id) for e in result.errors] == [
        ("invalid_number", "n"),
        ("invalid_boolean", "b"),
        ("invalid_date", "d"),
        ("invalid_telephone", "t"),
        ("invalid_string", "s"),
        ("missing_required_data_point", "m"),
    ]
    assert result.data_points == {"good": 1}


SECRET = "Jane-Secret-Doe-555"


@pytest.mark.parametrize("value_type", [t.value for t in mapping.ValueType])
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
    points = [
        DataPointDefinition(id=t.value, value_type=t, optional=True) for t in mapping.ValueType
    ]
    result = map_payload(
        webhook([DataPointMapping(data_point_definition_id=p.id, path="$.v") for p in points]),
        definition(*points),
        body,
    )
    assert all(e.code in ERROR_CODES for e in result.errors)
    assert result.patient_identifier is None


def test_path_failing_at_request_time_is_an_error_not_an_exception() -> None:
    result = map_payload(
        webhook(
            [
                DataPointMapping(data_point_definition_id="bad", path="$.a["),
                DataPointMapping(data_point_definition_id="sorted", path="$.a[/x]"),
                DataPointMapping(data_point_definition_id="fine", path="$.b"),
            ]
        ),
        definition(
            DataPointDefinition(id="bad", value_type="string"),
            DataPointDefinition(id="sorted", value_type="json"),
            DataPointDefinition(id="fine", value_type="number"),
        ),
        {"a": [{"x": 1}, {"x": "mixed types cannot be sorted"}], "b": 2},
    )
    assert [(e.code, e.data_point_definition_id) for e in result.errors] == [
        ("invalid_path", "bad"),
        ("path_evaluation_failed", "sorted"),
    ]
    assert result.data_points == {"fine": 2}


def test_paths_with_filters_brackets_and_dollar_in_values() -> None:
    body = {
        "identifier": [
            {"system": "urn:other", "value": "1"},
            {"system": "urn:x", "value": "2"},
        ],
        "first-name": "Ann",
        "url": "Subscription/1/$status",
    }
    points = [
        DataPointDefinition(id="id", value_type="string"),
        DataPointDefinition(id="name", value_type="string"),
        DataPointDefinition(id="url", value_type="string"),
    ]
    result = map_payload(
        webhook(
            [
                DataPointMapping(
                    data_point_definition_id="id", path="$.identifier[?(@.system=='urn:x')].value"
                ),
                DataPointMapping(data_point_definition_id="name", path="$['first-name']"),
                DataPointMapping(data_point_definition_id="url", path="$.url"),
            ]
        ),
        definition(*points),
        body,
    )
    assert result.errors == []
    assert result.data_points == {"id": "2", "name": "Ann", "url": "Subscription/1/$status"}


# --- patient identifier (§6) ---------------------------------------------------------------------


def identify(body: Any, mapping: PatientIdentifierMapping | None) -> MappingResult:
    return map_payload(webhook(patient_identifier=mapping), definition(), body)


def test_identifier_literal_system_and_value_path() -> None:
    result = identify(
        {"mrn": " 24680 "},
        PatientIdentifierMapping(system="urn:oid:1.2.3", value_path="$.mrn"),
    )
    assert result.errors == []
    assert result.patient_identifier is not None
    assert result.patient_identifier.model_dump() == {"system": "urn:oid:1.2.3", "value": "24680"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(90001, "90001"), (90001.0, "90001"), (1.5, "1.5"), (1e-05, "0.00001"), (0, "0")],
)
def test_identifier_numbers_become_decimal_text(value: Any, expected: str) -> None:
    result = identify({"v": value}, PatientIdentifierMapping(system="urn:x", value_path="$.v"))
    assert result.patient_identifier is not None
    assert result.patient_identifier.value == expected


@pytest.mark.parametrize("value", ["", "   ", True, False, {"id": 1}, [1], float("inf")])
def test_identifier_invalid_values(value: Any) -> None:
    result = identify({"v": value}, PatientIdentifierMapping(system="urn:x", value_path="$.v"))
    assert result.patient_identifier is None
    assert [(e.code, e.path) for e in result.errors] == [("invalid_identifier_value", "$.v")]


def test_identifier_system_from_path() -> None:
    mapping = PatientIdentifierMapping(system_path="$.sys", value_path="$.val")
    result = identify({"sys": "urn:a", "val": 7}, mapping)
    assert result.patient_identifier is not None
    assert result.patient_identifier.model_dump() == {"system": "urn:a", "value": "7"}

    result = identify({"sys": 12, "val": "7"}, mapping)
    assert result.patient_identifier is None
    assert [(e.code, e.path) for e in result.errors] == [("invalid_identifier_system", "$.sys")]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"val": "7"}, ["$.sys"]),
        ({"sys": "urn:a"}, ["$.val"]),
        ({"sys": None, "val": None}, ["$.sys", "$.val"]),
        ([], ["$.sys", "$.val"]),
    ],
)
def test_configured_identifier_that_finds_nothing(body: Any, paths: list[str]) -> None:
    result = identify(body, PatientIdentifierMapping(system_path="$.sys", value_path="$.val"))
    assert result.patient_identifier is None
    assert [(e.code, e.path) for e in result.errors] == [
        ("missing_patient_identifier", p) for p in paths
    ]


def test_identifier_from_body_field_when_no_mapping() -> None:
    body = {"patient_identifier": {"system": "urn:x", "value": 42}}
    result = identify(body, None)
    assert result.errors == []
    assert result.patient_identifier is not None
    assert result.patient_identifier.model_dump() == {"system": "urn:x", "value": "42"}


def test_mapping_wins_over_body_field() -> None:
    body = {"patient_identifier": {"system": "urn:body", "value": "1"}, "v": "2"}
    result = identify(body, PatientIdentifierMapping(system="urn:map", value_path="$.v"))
    assert result.patient_identifier is not None
    assert result.patient_identifier.model_dump() == {"system": "urn:map", "value": "2"}


@pytest.mark.parametrize("body", [{}, {"patient_identifier": None}, [], "x", None, 3])
def test_anonymous_without_mapping_or_body_field(body: Any) -> None:
    result = identify(body, None)
    assert (result.patient_identifier, result.errors) == (None, [])


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("mrn-123", [("invalid_patient_identifier", "$.patient_identifier")]),
        ({"system": "urn:x"}, [("missing_patient_identifier", "$.patient_identifier.value")]),
        ({"value": "1"}, [("missing_patient_identifier", "$.patient_identifier.system")]),
        (
            {"system": 1, "value": "1"},
            [("invalid_identifier_system", "$.patient_identifier.system")],
        ),
        (
            {"system": "urn:x", "value": ""},
            [("invalid_identifier_value", "$.patient_identifier.value")],
        ),
    ],
)
def test_malformed_body_field_is_an_error(field: Any, expected: list[tuple[str, str]]) -> None:
    result = identify({"patient_identifier": field}, None)
    assert result.patient_identifier is None
    assert [(e.code, e.path) for e in result.errors] == expected


# --- patient profile -----------------------------------------------------------------------------


PROFILE = PatientProfileMapping(
    first_name="$.first",
    last_name="$.last",
    birth_date="$.born",
    email="$.email",
    phone="$.phone",
    sex="$.sex",
    preferred_language="$.lang",
)


def profile_of(body: Any, region: str | None = None) -> MappingResult:
    return map_payload(webhook(patient_profile=PROFILE, default_region=region), definition(), body)


def test_profile_fields() -> None:
    result = profile_of(
        {
            "first": " Clémence ",
            "last": "du Exemplé",
            "born": "1971-03-14",
            "email": "c@example.org",
            "phone": "(415) 555-2671",
            "sex": "FEMALE",
            "lang": " FR ",
        }
    )
    assert result.errors == []
    assert result.profile == {
        "first_name": "Clémence",
        "last_name": "du Exemplé",
        "birth_date": "1971-03-14",
        "email": "c@example.org",
        "phone": "+14155552671",
        "sex": "female",
        "preferred_language": "fr",
    }


def test_profile_absent_fields_are_omitted() -> None:
    result = profile_of({"first": None, "last": "", "sex": "  ", "phone": " "})
    assert (result.profile, result.errors) == ({}, [])


def test_profile_uses_default_region() -> None:
    assert profile_of({"phone": "(03) 5550 0101"}, region="AU").profile == {"phone": "+61355500101"}


@pytest.mark.parametrize(
    ("field", "path", "value"),
    [
        ("birth_date", "$.born", "1971-03-14T10:00:00Z"),
        ("birth_date", "$.born", "14/03/1971"),
        ("birth_date", "$.born", 19710314),
        ("phone", "$.phone", "(03) 5550 0101"),
        ("sex", "$.sex", "m"),
        ("sex", "$.sex", 1),
        ("preferred_language", "$.lang", "en-US"),
        ("preferred_language", "$.lang", "xx"),
        ("preferred_language", "$.lang", "eng"),
        ("first_name", "$.first", {"given": "Ann"}),
        ("email", "$.email", ["a@example.org"]),
    ],
)
def test_profile_invalid_field(field: str, path: str, value: Any) -> None:
    result = profile_of({path[2:]: value})
    assert result.profile == {}
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.code, error.path, error.data_point_definition_id) == (
        "invalid_profile_field",
        path,
        None,
    )
    assert field in error.message


def test_profile_errors_do_not_stop_other_fields() -> None:
    result = profile_of({"first": "Ann", "sex": "robot", "lang": "de"})
    assert result.profile == {"first_name": "Ann", "preferred_language": "de"}
    assert [e.code for e in result.errors] == ["invalid_profile_field"]


def test_iso_639_1_codes() -> None:
    # pycountry (ISO 639-3 data) gives 184 two-letter codes: the old hand-written list (from
    # ISO 639-2) had "bh" (Bihari, a collective code) where pycountry has "sh" (Serbo-Croatian).
    assert len(ISO_639_1_CODES) == 184
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in ISO_639_1_CODES)
    assert {"en", "nl", "fr", "de", "zh", "sh"} <= ISO_639_1_CODES
    assert not {"xx", "bh", "eng", "en-US", "EN"} & ISO_639_1_CODES


@pytest.mark.parametrize("code", ["en", "nl", " NL ", "sh"])
def test_profile_language_accepts_iso_639_1(code: str) -> None:
    result = profile_of({"lang": code})
    assert result.errors == []
    assert result.profile == {"preferred_language": code.strip().lower()}


@pytest.mark.parametrize("code", ["xx", "en-US", "eng", "bh", "e", ""])
def test_profile_language_refuses_others(code: str) -> None:
    result = profile_of({"lang": code})
    assert result.profile == {}
    assert [e.code for e in result.errors] == ([] if code == "" else ["invalid_profile_field"])


# --- compile_path, check_paths, find_first -------------------------------------------------------


def test_compile_path_is_cached() -> None:
    path = "$.identifier[?(@.system=='urn:cache-test')].value"
    assert compile_path(path) is compile_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "$.a[",
        "a..",
        "$[?()]",
        "",
        "   ",
        "$.a[?(@.b==unquoted)]",  # deprecated by jsonpath-ng, removed in 2.0
        "$.a | $.b",
        "$.a[?(@.b=~$.c)]",
    ],
)
def test_compile_path_refuses(path: str) -> None:
    with pytest.raises(InvalidPathError) as caught:
        compile_path(path)
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)


def test_check_paths_reports_every_bad_path() -> None:
    hook = webhook(
        [
            DataPointMapping(data_point_definition_id="ok", path="$.ok"),
            DataPointMapping(data_point_definition_id="bad", path="$.bad["),
            DataPointMapping(data_point_definition_id="fmt", path="$.d", date_format="YYYY-MM-DD"),
            DataPointMapping(data_point_definition_id="fmt2", path="$.d", date_format="%Q"),
            DataPointMapping(data_point_definition_id="fmt3", path="$.d", date_format="%G-%m"),
            DataPointMapping(data_point_definition_id="fine1", path="$.d", date_format="epoch_ms"),
            DataPointMapping(data_point_definition_id="fine2", path="$.d", date_format="%d/%m/%Y"),
        ],
        patient_identifier=PatientIdentifierMapping(system_path="$.s[", value_path="$.v["),
        patient_profile=PatientProfileMapping(first_name="$.f[", sex="$.sex"),
        delivery_id_path="$.id[",
    )
    errors = check_paths(hook)
    assert [(e.code, e.data_point_definition_id, e.path) for e in errors] == [
        ("invalid_path", "bad", "$.bad["),
        ("invalid_date_format", "fmt", "$.d"),
        ("invalid_date_format", "fmt2", "$.d"),
        ("invalid_date_format", "fmt3", "$.d"),
        ("invalid_path", None, "$.s["),
        ("invalid_path", None, "$.v["),
        ("invalid_path", None, "$.f["),
        ("invalid_path", None, "$.id["),
    ]
    assert "first_name" in errors[6].message
    assert "delivery_id_path" in errors[7].message


def test_check_paths_clean_webhook() -> None:
    hook = webhook(
        [DataPointMapping(data_point_definition_id="a", path="$.a", date_format="epoch_s")],
        patient_identifier=PatientIdentifierMapping(system="urn:x", value_path="$.v"),
        patient_profile=PROFILE,
        delivery_id_path="$.id",
    )
    assert check_paths(hook) == []


def test_find_first() -> None:
    body = {"events": [{"id": None}, {"id": "evt_1"}, {"id": "evt_2"}]}
    assert find_first("$.events[*].id", body) == "evt_1"
    assert find_first("$.nothing", body) is None
    assert find_first("$.events[0].id", body) is None
    assert find_first("$.events[", body) is None  # unparsable: None, never an exception
    assert find_first("$.x", [1, 2]) is None
