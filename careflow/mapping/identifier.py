"""Patient identifier (contract §6): from the webhook's mapping or the body field of that name."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from careflow.mapping.codes import (
    INVALID_IDENTIFIER_SYSTEM,
    INVALID_IDENTIFIER_VALUE,
    INVALID_PATIENT_IDENTIFIER,
    MISSING_PATIENT_IDENTIFIER,
    _error,
    _json_type,
    _path_error,
)
from careflow.mapping.paths import InvalidPathError, _EvaluationFailed, _first_present
from careflow.models import Identifier, RequestError, WebhookFields

# Identifier values are stored (and matched) whole: longer ones are refused, not cut.
MAX_IDENTIFIER_VALUE_LENGTH = 1024


def _identifier_value(value: Any) -> str | None:
    """Identifier value → non-empty trimmed text; numbers (not booleans) → decimal text.

    None (invalid) for text over ``MAX_IDENTIFIER_VALUE_LENGTH`` characters or holding control
    characters other than tab, CR and LF (a FHIR ``string``, FHIR R4 §2.24.0.1, which is also
    what PostgreSQL text columns accept: no NUL).
    """
    kind = type(value)
    if kind is str:
        if not _is_fhir_string(value):  # checked before trimming: strip() eats \x1c–\x1f
            return None
        text = value.strip()
        if len(text) > MAX_IDENTIFIER_VALUE_LENGTH:
            return None
        return text or None
    if kind is int:
        try:
            text = str(value)
        except ValueError:
            return None
        return text if len(text) <= MAX_IDENTIFIER_VALUE_LENGTH else None
    if kind is float:
        if not math.isfinite(value):
            return None
        # The shortest round-tripping decimal, positional (1e-05 → "0.00001", 90001.0 → "90001").
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return None


def _is_fhir_string(text: str) -> bool:
    return all(char >= " " or char in "\t\r\n" for char in text)


def _identifier_system(value: Any) -> str | None:
    if type(value) is not str:
        return None
    return value.strip() or None


def _build_identifier(
    system: Any, value: Any, system_path: str | None, value_path: str | None
) -> tuple[Identifier | None, list[RequestError]]:
    errors: list[RequestError] = []
    system_text = _identifier_system(system)
    if system_text is None:
        errors.append(
            _error(
                INVALID_IDENTIFIER_SYSTEM,
                f"patient identifier system: got a JSON {_json_type(system)}, "
                "expected a non-empty string (an absolute URI)",
                path=system_path,
            )
        )
    value_text = _identifier_value(value)
    if value_text is None:
        errors.append(
            _error(
                INVALID_IDENTIFIER_VALUE,
                f"patient identifier value: got a JSON {_json_type(value)}, "
                "expected a non-empty string or a finite number (at most "
                f"{MAX_IDENTIFIER_VALUE_LENGTH} characters, no control characters)",
                path=value_path,
            )
        )
    if errors or system_text is None or value_text is None:
        return None, errors
    return Identifier(system=system_text, value=value_text), errors


def _identifier_part(path: str, name: str, body: Any, errors: list[RequestError]) -> Any:
    """The first non-null match of one identifier path; appends an error when there is none."""
    try:
        found = _first_present(path, body)
    except (InvalidPathError, _EvaluationFailed) as exc:
        errors.append(_path_error(exc, path, None, "patient identifier"))
        return None
    if found is None:
        errors.append(
            _error(
                MISSING_PATIENT_IDENTIFIER,
                f"patient identifier: {name} matched nothing (or only null)",
                path=path,
            )
        )
    return found


def _patient_identifier(
    webhook: WebhookFields, body: Any
) -> tuple[Identifier | None, list[RequestError]]:
    mapping = webhook.patient_identifier
    if mapping is not None:
        errors: list[RequestError] = []
        system: Any = mapping.system
        if mapping.system_path is not None:
            system = _identifier_part(mapping.system_path, "system_path", body, errors)
        value = _identifier_part(mapping.value_path, "value_path", body, errors)
        if errors:
            return None, errors
        return _build_identifier(system, value, mapping.system_path, mapping.value_path)

    if type(body) is not dict:
        return None, []
    field = body.get("patient_identifier")
    if field is None:
        return None, []
    if type(field) is not dict:
        return None, [
            _error(
                INVALID_PATIENT_IDENTIFIER,
                f"body field patient_identifier: got a JSON {_json_type(field)}, "
                "expected an object {system, value}",
                path="$.patient_identifier",
            )
        ]
    missing = [
        _error(
            MISSING_PATIENT_IDENTIFIER,
            f"body field patient_identifier has no {key}",
            path=f"$.patient_identifier.{key}",
        )
        for key in ("system", "value")
        if field.get(key) is None
    ]
    if missing:
        return None, missing
    return _build_identifier(
        field["system"], field["value"], "$.patient_identifier.system", "$.patient_identifier.value"
    )
