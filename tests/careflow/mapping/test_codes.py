"""Error codes and the RequestError builders (``careflow.mapping.codes``)."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping import codes
from careflow.mapping.codes import ERROR_CODES, _error, _json_type, _path_error
from careflow.mapping.paths import InvalidPathError


def test_error_codes_are_every_code_constant() -> None:
    constants = {
        name: value
        for name, value in vars(codes).items()
        if name.isupper() and isinstance(value, str) and name != "DEFAULT_REGION"
    }
    assert set(constants.values()) == ERROR_CODES
    assert len(constants) == len(ERROR_CODES)  # no two constants share a code
    assert all(code == code.lower() and " " not in code for code in ERROR_CODES)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (False, "boolean"),
        (0, "number"),
        (1.5, "number"),
        ("", "string"),
        ([], "array"),
        ({}, "object"),
        (object(), "object"),
        (b"x", "bytes"),
    ],
)
def test_json_type(value: Any, name: str) -> None:
    assert _json_type(value) == name


def test_error_builds_a_request_error() -> None:
    error = _error("invalid_number", "data point 'dp': bad", "dp", "$.v")
    assert error.model_dump() == {
        "code": "invalid_number",
        "message": "data point 'dp': bad",
        "data_point_definition_id": "dp",
        "path": "$.v",
    }


def test_path_error_of_a_path_that_does_not_parse() -> None:
    error = _path_error(InvalidPathError("$.a[", "unexpected end"), "$.a[", "dp", "data point 'dp'")
    assert (error.code, error.data_point_definition_id, error.path) == (
        "invalid_path",
        "dp",
        "$.a[",
    )
    assert error.message == "data point 'dp': the path does not parse: unexpected end"


def test_path_error_of_a_failing_evaluation() -> None:
    error = _path_error(TypeError("TypeError"), "$.a[/x]", None, "patient identifier")
    assert (error.code, error.data_point_definition_id, error.path) == (
        "path_evaluation_failed",
        None,
        "$.a[/x]",
    )
    assert error.message.startswith("patient identifier: evaluating the path failed")
