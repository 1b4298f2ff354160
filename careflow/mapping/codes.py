"""Error codes of the mapping engine and the ``RequestError`` builders that use them.

Messages never quote payload values (they may be PHI): they name only codes, data point ids,
paths, profile field names and value types (:func:`_json_type`).
"""

from __future__ import annotations

from typing import Any

from careflow.mapping.paths import InvalidPathError
from careflow.models import RequestError

MISSING_REQUIRED_DATA_POINT = "missing_required_data_point"
INVALID_STRING = "invalid_string"
INVALID_NUMBER = "invalid_number"
INVALID_BOOLEAN = "invalid_boolean"
INVALID_DATE = "invalid_date"
INVALID_TELEPHONE = "invalid_telephone"
INVALID_JSON = "invalid_json_value"
NOT_IN_POSSIBLE_VALUES = "not_in_possible_values"
OUT_OF_RANGE = "out_of_range"
INVALID_PATH = "invalid_path"
PATH_EVALUATION_FAILED = "path_evaluation_failed"
INVALID_DATE_FORMAT = "invalid_date_format"
MISSING_PATIENT_IDENTIFIER = "missing_patient_identifier"
INVALID_PATIENT_IDENTIFIER = "invalid_patient_identifier"
INVALID_IDENTIFIER_VALUE = "invalid_identifier_value"
INVALID_IDENTIFIER_SYSTEM = "invalid_identifier_system"
INVALID_PROFILE_FIELD = "invalid_profile_field"

ERROR_CODES: frozenset[str] = frozenset(
    {
        MISSING_REQUIRED_DATA_POINT,
        INVALID_STRING,
        INVALID_NUMBER,
        INVALID_BOOLEAN,
        INVALID_DATE,
        INVALID_TELEPHONE,
        INVALID_JSON,
        NOT_IN_POSSIBLE_VALUES,
        OUT_OF_RANGE,
        INVALID_PATH,
        PATH_EVALUATION_FAILED,
        INVALID_DATE_FORMAT,
        MISSING_PATIENT_IDENTIFIER,
        INVALID_PATIENT_IDENTIFIER,
        INVALID_IDENTIFIER_VALUE,
        INVALID_IDENTIFIER_SYSTEM,
        INVALID_PROFILE_FIELD,
    }
)
"""Every code :func:`map_payload` and :func:`check_paths` can report."""

DEFAULT_REGION = "US"
"""Region for national-format telephone numbers when the webhook sets no ``default_region``."""


def _json_type(value: Any) -> str:
    """The JSON type name of a value (for messages: a type is not PHI, a value may be)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _error(
    code: str, message: str, data_point_id: str | None = None, path: str | None = None
) -> RequestError:
    return RequestError(
        code=code, message=message, data_point_definition_id=data_point_id, path=path
    )


def _path_error(exc: Exception, path: str, data_point_id: str | None, what: str) -> RequestError:
    if isinstance(exc, InvalidPathError):
        return _error(
            INVALID_PATH, f"{what}: the path does not parse: {exc.reason}", data_point_id, path
        )
    return _error(
        PATH_EVALUATION_FAILED,
        f"{what}: evaluating the path failed on this payload ({exc})",
        data_point_id,
        path,
    )
