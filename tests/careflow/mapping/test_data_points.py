"""Data points (``careflow.mapping.data_points``): type rules, constraints, arrays, absence."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping.data_points import _TYPE_RULES, _json_equal
from careflow.models import ValueRange, ValueType
from tests.careflow.mapping.factories import error_code, map_body, map_one, ok

# --- type rules: each value type's coercer and error code ----------------------------------------


def test_every_value_type_has_a_rule() -> None:
    assert set(_TYPE_RULES) == set(ValueType)


@pytest.mark.parametrize(
    ("value_type", "value", "code"),
    [
        ("string", {}, "invalid_string"),
        ("number", "x", "invalid_number"),
        ("boolean", "maybe", "invalid_boolean"),
        ("date", "yesterday", "invalid_date"),
        ("telephone", "12", "invalid_telephone"),
        ("strings_array", [{}], "invalid_string"),
        ("numbers_array", ["x"], "invalid_number"),
        ("json", float("nan"), "invalid_json_value"),
    ],
)
def test_invalid_value_gives_the_type_error_code(value_type: str, value: Any, code: str) -> None:
    assert error_code(value, value_type) == code


@pytest.mark.parametrize(
    ("value", "value_type", "options", "expected"),
    [
        ("14/03/1971", "date", {"date_format": "%d/%m/%Y"}, "1971-03-14"),
        (1684920600, "date", {"date_format": "epoch_s"}, "2023-05-24T09:30:00Z"),
        ("(03) 5550 0101", "telephone", {"region": "AU"}, "+61355500101"),
    ],
)
def test_date_format_and_region_reach_the_coercer(
    value: Any, value_type: str, options: dict[str, Any], expected: str
) -> None:
    assert ok(value, value_type, **options) == expected


# --- constraints: possible_values (JSON equality) and range --------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        ("a", "a", True),
        ("a", "A", False),
        ([1, {"a": 2}], [1.0, {"a": 2.0}], True),
        ([1, 2], [2, 1], False),
        ([1], [1, 1], False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": True}, {"a": 1}, False),
        (1, [1], False),
        ([], {}, False),
        (None, None, True),
    ],
)
def test_json_equality(left: Any, right: Any, equal: bool) -> None:
    assert _json_equal(left, right) is equal
    assert _json_equal(right, left) is equal


def test_number_range_and_possible_values() -> None:
    bounds = ValueRange(min=0, max=10)
    assert ok(0, "number", value_range=bounds) == 0
    assert ok("10", "number", value_range=bounds) == 10
    assert error_code(10.5, "number", value_range=bounds) == "out_of_range"
    assert error_code(-1, "number", value_range=bounds) == "out_of_range"
    assert ok(1.0, "number", possible_values=[1, 2]) == 1.0  # JSON equality: 1 = 1.0
    assert error_code(3, "number", possible_values=[1, 2]) == "not_in_possible_values"
    assert error_code(1, "number", possible_values=[True]) == "not_in_possible_values"


def test_boolean_possible_values_are_typed() -> None:
    assert ok("yes", "boolean", possible_values=[True]) is True
    assert error_code("no", "boolean", possible_values=[True]) == "not_in_possible_values"
    assert error_code(True, "boolean", possible_values=[1]) == "not_in_possible_values"


def test_string_possible_values() -> None:
    assert ok("a", "string", possible_values=["a", "b"]) == "a"
    assert error_code("A", "string", possible_values=["a", "b"]) == "not_in_possible_values"
    assert ok(1, "string", possible_values=["1"]) == "1"  # compared after coercion
    assert ok("x", "string", possible_values=[]) == "x"  # empty list: no constraint
    assert ok("x", "string", value_range=ValueRange(min=5)) == "x"  # range: numbers only


def test_date_possible_values_compare_normalised_text() -> None:
    allowed = ["2023-04-14T07:00:00Z"]
    assert ok("2023-04-14T09:00+02:00", "date", possible_values=allowed) == allowed[0]
    assert error_code("2023-04-14T09:00Z", "date", possible_values=allowed) == (
        "not_in_possible_values"
    )


def test_json_possible_values_use_json_equality() -> None:
    assert ok({"a": 1.0}, "json", possible_values=[{"a": 1}]) == {"a": 1.0}
    assert error_code({"a": True}, "json", possible_values=[{"a": 1}]) == "not_in_possible_values"


# --- arrays --------------------------------------------------------------------------------------


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
    assert ok(["a", 1, True], "strings_array") == ["a", "1", "true"]


@pytest.mark.parametrize("value", [[], [None]])
def test_present_array_without_elements_is_an_empty_list(value: list[Any]) -> None:
    assert ok(value, "strings_array") == []


def test_array_without_any_match_is_absent() -> None:
    # No match at all; a null match ({"v": null}) is covered for every type by test_null_is_absent.
    assert error_code(["a"], "strings_array", path="$.nope") == "missing_required_data_point"


def test_array_element_errors_name_indices_and_codes() -> None:
    result = map_one(
        [1, "x", [2], 50, 3],
        "numbers_array",
        value_range=ValueRange(max=10),
        possible_values=[1, 3, 50],
    )
    assert "dp" not in result.data_points
    by_code = {e.code: e for e in result.errors}
    assert set(by_code) == {"invalid_number", "out_of_range"}
    assert "index 1, 2" in by_code["invalid_number"].message
    assert "index 3" in by_code["out_of_range"].message
    assert all(e.path == "$.v" and e.data_point_definition_id == "dp" for e in result.errors)


def test_array_error_lists_at_most_ten_indices() -> None:
    result = map_one(["x"] * 13, "numbers_array")
    assert [e.code for e in result.errors] == ["invalid_number"]
    assert "index 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 3 more" in result.errors[0].message


def test_array_possible_values_per_element() -> None:
    result = map_one(["a", "b", "c"], "strings_array", possible_values=["a", "b"])
    assert [e.code for e in result.errors] == ["not_in_possible_values"]
    assert "index 2" in result.errors[0].message
    assert ok(["a", "b"], "strings_array", possible_values=["a", "b"]) == ["a", "b"]


def test_strings_array_rejects_objects() -> None:
    assert error_code([{"a": 1}], "strings_array") == "invalid_string"


# --- json ----------------------------------------------------------------------------------------


def test_json_single_match_is_the_value() -> None:
    assert ok({"a": [1, {"b": None}]}, "json") == {"a": [1, {"b": None}]}
    assert ok([], "json") == []
    assert ok(False, "json") is False


def test_json_several_matches_are_a_list() -> None:
    body = {"items": [{"v": {"x": 1}}, {"v": None}, {"v": 2}]}
    assert map_body(body, "json", "$.items[*].v").data_points["dp"] == [{"x": 1}, 2]


# --- absence, single values, path errors ---------------------------------------------------------


@pytest.mark.parametrize("value_type", [t.value for t in ValueType])
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


@pytest.mark.parametrize(
    ("path", "code"),
    [("$.a[", "invalid_path"), ("$.a[/x]", "path_evaluation_failed")],
)
def test_path_problem_is_an_error_of_the_data_point(path: str, code: str) -> None:
    body = {"a": [{"x": 1}, {"x": "mixed types cannot be sorted"}]}
    result = map_body(body, "json", path, optional=True)  # optional: still an error
    assert result.data_points == {}
    assert [(e.code, e.data_point_definition_id, e.path) for e in result.errors] == [
        (code, "dp", path)
    ]
