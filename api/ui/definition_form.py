"""The care flow definition form: one row of fields per baseline data point.

Field names are ``dp-<n>-id``, ``dp-<n>-title``, ``dp-<n>-type``, ``dp-<n>-optional``,
``dp-<n>-values`` (possible values, comma-separated), ``dp-<n>-min`` and ``dp-<n>-max``; a row
with neither id nor anything else is skipped. The page checks each row as it is typed
(``app.js``); this module checks again and says which row is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

from careflow.errors import InvalidConfigError
from careflow.models import CareFlowDefinition, RequestError, ValueType

_ROW = re.compile(r"^dp-(\d{1,4})-(id|title|type|optional|values|min|max)$")
_NUMERIC = (ValueType.NUMBER, ValueType.NUMBERS_ARRAY)


def _problem(row: int, message: str) -> RequestError:
    return RequestError(code="invalid_data_point", message=f"data point row {row}: {message}")


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _number(text: str) -> float | int:
    """A JSON number (RFC 8259 grammar) from the form's text; integers stay integers."""
    match = _JSON_NUMBER.fullmatch(text.strip())
    if match is None or len(text) > 64:
        raise ValueError("not a number")
    if match.group(1) is None and match.group(2) is None:
        return int(text)
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not finite")
    return value


def _possible(text: str, value_type: ValueType) -> list[Any] | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    if value_type in _NUMERIC:
        return [_number(p) for p in parts]
    if value_type == ValueType.BOOLEAN:
        lowered = [p.lower() for p in parts]
        if any(p not in ("true", "false") for p in lowered):
            raise ValueError("true or false")
        return [p == "true" for p in lowered]
    return parts


def points_from_form(form: dict[str, Any]) -> list[dict[str, Any]]:
    """The data point definitions of a submitted form, in row order.

    Raises:
        InvalidConfigError: ``invalid_data_point`` naming each row that is wrong (422).
    """
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _ROW.match(key)
        if match and isinstance(value, str):
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    points: list[dict[str, Any]] = []
    problems: list[RequestError] = []
    for number, (_, row) in enumerate(sorted(rows.items()), start=1):
        if not row.get("id") and not any(
            row.get(k) for k in ("title", "values", "min", "max", "optional")
        ):
            continue
        try:
            value_type = ValueType(row.get("type") or "string")
        except ValueError:
            problems.append(_problem(number, "unknown type"))
            continue
        point: dict[str, Any] = {
            "id": row.get("id", ""),
            "title": row.get("title", ""),
            "value_type": value_type.value,
            "optional": row.get("optional") in ("on", "true", "1"),
        }
        try:
            possible = _possible(row.get("values", ""), value_type)
        except ValueError:
            kind = "numbers" if value_type in _NUMERIC else "true or false"
            problems.append(_problem(number, f"possible values must be {kind}"))
            continue
        if possible is not None:
            point["possible_values"] = possible
        bounds: dict[str, float | int] = {}
        for side in ("min", "max"):
            if row.get(side):
                try:
                    bounds[side] = _number(row[side])
                except ValueError:
                    problems.append(_problem(number, f"{side} must be a number"))
        if bounds:
            if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
                problems.append(_problem(number, "min is greater than max"))
            point["range"] = bounds
        points.append(point)
    if problems:
        raise InvalidConfigError(problems)
    return points


def rows_of(definition: CareFlowDefinition | None) -> list[dict[str, Any]]:
    """The form rows of a definition (its data points), plus one empty row to type into."""
    rows = []
    for point in definition.data_point_definitions if definition else []:
        rng = point.range
        rows.append(
            {
                "id": point.id,
                "title": point.title,
                "type": point.value_type.value,
                "optional": point.optional,
                "values": ", ".join(
                    json.dumps(v) if not isinstance(v, str) else v
                    for v in point.possible_values or []
                ),
                "min": "" if rng is None or rng.min is None else f"{rng.min:g}",
                "max": "" if rng is None or rng.max is None else f"{rng.max:g}",
            }
        )
    rows.append(
        {
            "id": "",
            "title": "",
            "type": "string",
            "optional": False,
            "values": "",
            "min": "",
            "max": "",
        }
    )
    return rows
