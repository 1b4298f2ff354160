"""Patient identifier (``careflow.mapping.identifier``, contract §6): mapping or body field."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping.identifier import _patient_identifier
from careflow.models import Identifier, PatientIdentifierMapping, RequestError
from tests.careflow.mapping.factories import webhook


def identify(
    body: Any, mapping: PatientIdentifierMapping | None
) -> tuple[Identifier | None, list[RequestError]]:
    return _patient_identifier(webhook(patient_identifier=mapping), body)


def codes_and_paths(errors: list[RequestError]) -> list[tuple[str, str | None]]:
    return [(e.code, e.path) for e in errors]


# --- from the webhook's mapping ------------------------------------------------------------------


def test_identifier_literal_system_and_value_path() -> None:
    identifier, errors = identify(
        {"mrn": " 24680 "}, PatientIdentifierMapping(system="urn:oid:1.2.3", value_path="$.mrn")
    )
    assert errors == []
    assert identifier is not None
    assert identifier.model_dump() == {"system": "urn:oid:1.2.3", "value": "24680"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(90001, "90001"), (90001.0, "90001"), (1.5, "1.5"), (1e-05, "0.00001"), (0, "0")],
)
def test_identifier_numbers_become_decimal_text(value: Any, expected: str) -> None:
    identifier, errors = identify(
        {"v": value}, PatientIdentifierMapping(system="urn:x", value_path="$.v")
    )
    assert errors == []
    assert identifier is not None
    assert identifier.value == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        True,
        False,
        {"id": 1},
        [1],
        float("inf"),
        "v" * 1025,  # over the stored length: refused, never cut
        10**1024,
        "a\u0000b",  # not a FHIR string, and PostgreSQL text refuses NUL
        "a\u001fb",
        "\u001f9001",  # str.strip() would eat it and match patient 9001
        "9001\u001c",
    ],
)
def test_identifier_invalid_values(value: Any) -> None:
    identifier, errors = identify(
        {"v": value}, PatientIdentifierMapping(system="urn:x", value_path="$.v")
    )
    assert identifier is None
    assert codes_and_paths(errors) == [("invalid_identifier_value", "$.v")]


@pytest.mark.parametrize("value", ["v" * 1024, "line\tone\r\ntwo", "ünï-24680"])
def test_identifier_values_up_to_the_limit_are_kept(value: str) -> None:
    identifier, errors = identify(
        {"v": value}, PatientIdentifierMapping(system="urn:x", value_path="$.v")
    )
    assert errors == []
    assert identifier is not None and identifier.value == value


def test_identifier_system_from_path() -> None:
    mapping = PatientIdentifierMapping(system_path="$.sys", value_path="$.val")
    identifier, errors = identify({"sys": " urn:a ", "val": 7}, mapping)  # systems are trimmed
    assert errors == []
    assert identifier is not None
    assert identifier.model_dump() == {"system": "urn:a", "value": "7"}

    identifier, errors = identify({"sys": 12, "val": "7"}, mapping)
    assert identifier is None
    assert codes_and_paths(errors) == [("invalid_identifier_system", "$.sys")]


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
    identifier, errors = identify(
        body, PatientIdentifierMapping(system_path="$.sys", value_path="$.val")
    )
    assert identifier is None
    assert codes_and_paths(errors) == [("missing_patient_identifier", p) for p in paths]


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (
            PatientIdentifierMapping(system_path="$.s[", value_path="$.v"),
            [("invalid_path", "$.s[")],
        ),
        (
            PatientIdentifierMapping(system="urn:x", value_path="$.a[/x]"),
            [("path_evaluation_failed", "$.a[/x]")],
        ),
        (
            PatientIdentifierMapping(system_path="$.s[", value_path="$.v["),
            [("invalid_path", "$.s["), ("invalid_path", "$.v[")],
        ),
    ],
)
def test_identifier_path_problems_are_errors(
    mapping: PatientIdentifierMapping, expected: list[tuple[str, str]]
) -> None:
    body = {"a": [{"x": 1}, {"x": "mixed"}], "v": "1"}
    identifier, errors = identify(body, mapping)
    assert identifier is None
    assert codes_and_paths(errors) == expected
    assert all(e.data_point_definition_id is None for e in errors)


def test_mapping_wins_over_body_field() -> None:
    body = {"patient_identifier": {"system": "urn:body", "value": "1"}, "v": "2"}
    identifier, _ = identify(body, PatientIdentifierMapping(system="urn:map", value_path="$.v"))
    assert identifier is not None
    assert identifier.model_dump() == {"system": "urn:map", "value": "2"}


# --- from the body's patient_identifier field ----------------------------------------------------


def test_identifier_from_body_field_when_no_mapping() -> None:
    identifier, errors = identify({"patient_identifier": {"system": "urn:x", "value": 42}}, None)
    assert errors == []
    assert identifier is not None
    assert identifier.model_dump() == {"system": "urn:x", "value": "42"}


@pytest.mark.parametrize("body", [{}, {"patient_identifier": None}, [], "x", None, 3])
def test_anonymous_without_mapping_or_body_field(body: Any) -> None:
    assert identify(body, None) == (None, [])


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
    identifier, errors = identify({"patient_identifier": field}, None)
    assert identifier is None
    assert codes_and_paths(errors) == expected
