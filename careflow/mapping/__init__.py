"""Payload mapping package: JSONPath evaluation and value coercion (contract §5, §6).

Pure domain code, no I/O, no HTTP, no Temporal: the ingest route and the ``validate_request``
activity both call :func:`map_payload` with a webhook's configuration, its care flow definition
and the parsed body, and get back the coerced data points, the patient identifier, the mapped
patient profile and every problem found (all data points are evaluated; nothing stops at the
first error).

Paths use jsonpath-ng's extended syntax (``jsonpath_ng.ext.parse``: filters such as
``$.identifier[?(@.system=='urn:x')].value``, bracketed names such as ``$['first-name']``; filter
comparison semantics follow RFC 9535 §2.3.5). Parsing costs about a millisecond, so every path is
compiled once and cached by its text (:func:`compile_path`); the API refuses a webhook whose path
does not parse when it is saved (:func:`check_paths`), never at request time.

Error messages never quote payload values (they may be PHI): they name only codes, data point
ids, paths, profile field names and value types.

Decisions where the contract is silent (contract §5 "build what a user would expect"):

* JSON ``null`` is *absent* everywhere. Single-valued types take the first non-null match;
  array types skip null matches and null elements; ``json`` drops null matches.
* A match that is an array contributes its elements to ``strings_array``/``numbers_array``
  (one level; a nested array element is a type error). ``[]`` is a value (an empty list).
* ``json``: one non-null match → that value (the body's own object, not a copy); several → a list.
* ``possible_values`` (compared with JSON equality: ``true`` ≠ ``1``, ``1`` = ``1.0``) apply to
  every type, per element for arrays, to the coerced value (E.164 text, normalised date). An empty
  ``possible_values`` list is no constraint. ``range`` (inclusive) applies to ``number`` and
  ``numbers_array`` only.
* An array with invalid elements gives one error per failure code, naming the element indices.
* A data point with any error is left out of ``data_points``.
* Several mappings for one data point id: the first wins. Mappings naming an id that is not in
  the definition are ignored.
* Dates: surrounding whitespace is trimmed; without ``date_format`` only ISO 8601 *extended*
  forms are accepted (``T`` and ``Z`` upper case; a decimal comma is allowed in the seconds;
  fractions beyond microseconds are truncated). With ``date_format`` these ISO forms are still
  accepted and tried first; otherwise the format decides. A strptime format without time
  directives gives a date (``YYYY-MM-DD``); one with time directives gives a date-time, and a
  naive result (no ``%z``) is taken as UTC.
* Booleans: integer ``1``/``0`` only (``1.0`` is not a boolean).
* Telephone: a JSON string, or a JSON integer taken as its digits.
* Identifier values: integral floats become integer text (``90001.0`` → ``"90001"``); systems are
  trimmed. A body ``patient_identifier`` field that is present but malformed is an error, never an
  anonymous patient.
* Profile: strings are trimmed and an empty string is absent; ``birth_date`` must be an ISO date
  (``YYYY-MM-DD``); ``preferred_language`` must be exactly a two-letter ISO 639-1 code (``en-US``
  is refused); invalid fields give ``invalid_profile_field`` with the JSONPath as ``path``, no
  data point id, and the field name in the message.
* Paths using syntax that jsonpath-ng deprecates (``|``, ``&``, unquoted words in filters) are
  refused as ``invalid_path``: their meaning changes or goes away in jsonpath-ng 2.0.

Modules: :mod:`~careflow.mapping.paths` (JSONPath compiling and evaluation),
:mod:`~careflow.mapping.coerce` (value coercers), :mod:`~careflow.mapping.data_points` (type
rules, constraints), :mod:`~careflow.mapping.identifier` (patient identifier),
:mod:`~careflow.mapping.profile` (patient profile, ISO 639-1 codes from pycountry),
:mod:`~careflow.mapping.engine` (:func:`map_payload`), :mod:`~careflow.mapping.checks`
(save-time :func:`check_paths`) and :mod:`~careflow.mapping.codes` (error codes). This package
re-exports the names other modules use.
"""

from __future__ import annotations

from careflow.mapping.checks import check_paths
from careflow.mapping.codes import (
    DEFAULT_REGION,
    ERROR_CODES,
    INVALID_BOOLEAN,
    INVALID_DATE,
    INVALID_DATE_FORMAT,
    INVALID_IDENTIFIER_SYSTEM,
    INVALID_IDENTIFIER_VALUE,
    INVALID_JSON,
    INVALID_NUMBER,
    INVALID_PATH,
    INVALID_PATIENT_IDENTIFIER,
    INVALID_PROFILE_FIELD,
    INVALID_STRING,
    INVALID_TELEPHONE,
    MISSING_PATIENT_IDENTIFIER,
    MISSING_REQUIRED_DATA_POINT,
    NOT_IN_POSSIBLE_VALUES,
    OUT_OF_RANGE,
    PATH_EVALUATION_FAILED,
)
from careflow.mapping.engine import map_payload
from careflow.mapping.paths import InvalidPathError, compile_path, find_first
from careflow.mapping.profile import ISO_639_1_CODES, SEX_VALUES
from careflow.models import ValueType

__all__ = [
    "DEFAULT_REGION",
    "ERROR_CODES",
    "INVALID_BOOLEAN",
    "INVALID_DATE",
    "INVALID_DATE_FORMAT",
    "INVALID_IDENTIFIER_SYSTEM",
    "INVALID_IDENTIFIER_VALUE",
    "INVALID_JSON",
    "INVALID_NUMBER",
    "INVALID_PATH",
    "INVALID_PATIENT_IDENTIFIER",
    "INVALID_PROFILE_FIELD",
    "INVALID_STRING",
    "INVALID_TELEPHONE",
    "ISO_639_1_CODES",
    "MISSING_PATIENT_IDENTIFIER",
    "MISSING_REQUIRED_DATA_POINT",
    "NOT_IN_POSSIBLE_VALUES",
    "OUT_OF_RANGE",
    "PATH_EVALUATION_FAILED",
    "SEX_VALUES",
    "InvalidPathError",
    "ValueType",
    "check_paths",
    "compile_path",
    "find_first",
    "map_payload",
]
