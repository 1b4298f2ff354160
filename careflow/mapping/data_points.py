"""Data points: type rules, constraints (``possible_values``, ``range``), per-mapping evaluation."""

from __future__ import annotations

from typing import Any, NamedTuple

from careflow.mapping.codes import (
    INVALID_BOOLEAN,
    INVALID_DATE,
    INVALID_JSON,
    INVALID_NUMBER,
    INVALID_STRING,
    INVALID_TELEPHONE,
    MISSING_REQUIRED_DATA_POINT,
    NOT_IN_POSSIBLE_VALUES,
    OUT_OF_RANGE,
    _error,
    _json_type,
    _path_error,
)
from careflow.mapping.coerce import (
    _INVALID,
    _coerce_boolean,
    _coerce_date,
    _coerce_json,
    _coerce_number,
    _coerce_string,
    _coerce_telephone,
    _Coercer,
)
from careflow.mapping.paths import InvalidPathError, _EvaluationFailed, _matches
from careflow.models import DataPointDefinition, RequestError, ValueType


class _TypeRule(NamedTuple):
    """How one value type is read: coercer (per element for arrays), error code, shape."""

    coerce: _Coercer
    code: str
    expected: str  # what the type accepts, for messages
    shape: int  # _SINGLE, _ARRAY or _JSON
    numeric: bool  # whether ``range`` applies


_SINGLE, _ARRAY, _JSON_SHAPE = 0, 1, 2
_STRING_TEXT = "a JSON string, number or boolean"
_NUMBER_TEXT = "a finite JSON number or a string in JSON number grammar (RFC 8259)"

_TYPE_RULES: dict[str, _TypeRule] = {
    ValueType.STRING: _TypeRule(_coerce_string, INVALID_STRING, _STRING_TEXT, _SINGLE, False),
    ValueType.NUMBER: _TypeRule(_coerce_number, INVALID_NUMBER, _NUMBER_TEXT, _SINGLE, True),
    ValueType.BOOLEAN: _TypeRule(
        _coerce_boolean,
        INVALID_BOOLEAN,
        "true/false, 1/0, or one of the strings true/false/t/f/yes/no/y/n/1/0",
        _SINGLE,
        False,
    ),
    ValueType.DATE: _TypeRule(
        _coerce_date,
        INVALID_DATE,
        "an ISO 8601 extended date, or date-time with Z or offset, or the mapping's date_format",
        _SINGLE,
        False,
    ),
    ValueType.TELEPHONE: _TypeRule(
        _coerce_telephone,
        INVALID_TELEPHONE,
        "a valid telephone number (libphonenumber, E.164)",
        _SINGLE,
        False,
    ),
    ValueType.STRINGS_ARRAY: _TypeRule(_coerce_string, INVALID_STRING, _STRING_TEXT, _ARRAY, False),
    ValueType.NUMBERS_ARRAY: _TypeRule(_coerce_number, INVALID_NUMBER, _NUMBER_TEXT, _ARRAY, True),
    ValueType.JSON: _TypeRule(
        _coerce_json, INVALID_JSON, "a JSON value with finite numbers", _JSON_SHAPE, False
    ),
}


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality as RFC 9535 §2.3.5.2.2 defines it.

    ``true`` ≠ ``1``, ``1`` = ``1.0``, strings by code points, arrays and objects deeply.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(map(_json_equal, left, right))
        )
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_json_equal(v, right[k]) for k, v in left.items())
        )
    if isinstance(right, (list, dict)):
        return False
    return bool(left == right)


def _in_possible_values(value: Any, possible: list[Any]) -> bool:
    return any(_json_equal(value, candidate) for candidate in possible)


def _constraint_code(value: Any, definition: DataPointDefinition, numeric: bool) -> str | None:
    """The constraint a coerced value breaks (``not_in_possible_values``, ``out_of_range``)."""
    possible = definition.possible_values
    if possible and not _in_possible_values(value, possible):
        return NOT_IN_POSSIBLE_VALUES
    bounds = definition.range
    if numeric and bounds is not None:
        if bounds.min is not None and value < bounds.min:
            return OUT_OF_RANGE
        if bounds.max is not None and value > bounds.max:
            return OUT_OF_RANGE
    return None


_CONSTRAINT_TEXT = {
    NOT_IN_POSSIBLE_VALUES: "not one of the definition's possible_values",
    OUT_OF_RANGE: "outside the definition's range",
}


def _index_list(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:10])
    return shown if len(indices) <= 10 else f"{shown} and {len(indices) - 10} more"


def _map_data_point(
    definition: DataPointDefinition,
    path: str,
    date_format: str | None,
    region: str,
    body: Any,
    data_points: dict[str, Any],
    errors: list[RequestError],
) -> None:
    """Evaluate one mapping, coerce, check constraints; store the value or append errors."""
    dp_id = definition.id
    value_type = definition.value_type
    try:
        matches = _matches(path, body)
    except (InvalidPathError, _EvaluationFailed) as exc:
        errors.append(_path_error(exc, path, dp_id, f"data point '{dp_id}'"))
        return
    coerce, code, expected, shape, numeric = _TYPE_RULES[value_type]

    if shape == _ARRAY:
        elements: list[Any] = []
        present = False
        for match in matches:
            if match is None:
                continue
            present = True
            if type(match) is list:
                elements.extend(e for e in match if e is not None)
            else:
                elements.append(match)
        if not present:
            _absent(definition, path, errors)
            return
        result: list[Any] = []
        failures: dict[str, list[int]] = {}
        for index, element in enumerate(elements):
            coerced = coerce(element, date_format, region)
            if coerced is _INVALID:
                failures.setdefault(code, []).append(index)
                continue
            broken = _constraint_code(coerced, definition, numeric)
            if broken is not None:
                failures.setdefault(broken, []).append(index)
                continue
            result.append(coerced)
        if not failures:
            data_points[dp_id] = result
            return
        for failure_code, indices in failures.items():
            reason = _CONSTRAINT_TEXT.get(failure_code) or f"expected {expected} for each element"
            errors.append(
                _error(
                    failure_code,
                    f"data point '{dp_id}' ({value_type}): elements at index "
                    f"{_index_list(indices)} (after flattening matches): {reason}",
                    dp_id,
                    path,
                )
            )
        return

    if shape == _JSON_SHAPE:
        present_values = [m for m in matches if m is not None]
        if not present_values:
            _absent(definition, path, errors)
            return
        value = present_values[0] if len(present_values) == 1 else present_values
    else:
        for value in matches:
            if value is not None:
                break
        else:
            _absent(definition, path, errors)
            return

    coerced = coerce(value, date_format, region)
    if coerced is _INVALID:
        errors.append(
            _error(
                code,
                f"data point '{dp_id}' ({value_type}): got a JSON {_json_type(value)}, "
                f"expected {expected}",
                dp_id,
                path,
            )
        )
        return
    if definition.possible_values or definition.range is not None:
        broken = _constraint_code(coerced, definition, numeric)
        if broken is not None:
            errors.append(
                _error(
                    broken,
                    f"data point '{dp_id}' ({value_type}): the value is {_CONSTRAINT_TEXT[broken]}",
                    dp_id,
                    path,
                )
            )
            return
    data_points[dp_id] = coerced


def _absent(definition: DataPointDefinition, path: str | None, errors: list[RequestError]) -> None:
    """An absent value: an error when required, nothing when optional."""
    if definition.optional:
        return
    where = "has no mapping" if path is None else "matched nothing (or only null)"
    errors.append(
        _error(
            MISSING_REQUIRED_DATA_POINT,
            f"required data point '{definition.id}' ({definition.value_type}) {where}",
            definition.id,
            path,
        )
    )
