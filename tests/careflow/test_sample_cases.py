"""The real-world sample cases (``tests/fixtures/samples``) as oracles for the mapping engine.

Each ``cases/<name>.json`` names a payload, the mappings a user would configure and the expected
value (or ``expected_error``) of every data point after coercion (contract §5) plus the expected
patient identifier (§6). Expectations are not edited here: they are the oracle.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from careflow.answers import MappingResult
from careflow.mapping import check_paths, map_payload
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    PatientIdentifierMapping,
    WebhookFields,
)

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"
CASE_FILES = sorted((SAMPLES / "cases").glob("*.json"))
UTC_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z")


def load_case(case_file: Path) -> dict[str, Any]:
    return json.loads(case_file.read_text(encoding="utf-8"))


def build(case: dict[str, Any]) -> tuple[WebhookFields, CareFlowDefinition, Any]:
    """The webhook and definition a user would configure for a case, and the parsed payload."""
    points = case["data_points"]
    identifier = case["patient_identifier"]
    webhook = WebhookFields(
        name="sample",
        care_flow_definition_id="sample",
        data_point_mappings=[
            DataPointMapping(
                data_point_definition_id=p["id"], path=p["path"], date_format=p.get("date_format")
            )
            for p in points
        ],
        patient_identifier=(
            PatientIdentifierMapping(
                system=identifier.get("system"),
                system_path=identifier.get("system_path"),
                value_path=identifier["value_path"],
            )
            if identifier is not None
            else None
        ),
        default_region=case.get("default_region", "US"),
    )
    definition = CareFlowDefinition(
        id="sample",
        title="sample",
        published=True,
        data_point_definitions=[
            DataPointDefinition(id=p["id"], value_type=p["value_type"], optional=p["optional"])
            for p in points
        ],
    )
    body = json.loads((SAMPLES / case["payload"]).read_text(encoding="utf-8"))
    return webhook, definition, body


_results: dict[Path, MappingResult] = {}


def result_for(case_file: Path) -> MappingResult:
    if case_file not in _results:
        _results[case_file] = map_payload(*build(load_case(case_file)))
    return _results[case_file]


def data_point_params() -> list[Any]:
    return [
        pytest.param(case_file, point, id=f"{case_file.stem}/{point['id']}")
        for case_file in CASE_FILES
        for point in load_case(case_file)["data_points"]
    ]


def test_fixtures_are_present() -> None:
    assert len(CASE_FILES) == 4
    for case_file in CASE_FILES:
        assert (SAMPLES / load_case(case_file)["payload"]).is_file()


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.stem)
def test_case_paths_parse(case_file: Path) -> None:
    webhook, _, _ = build(load_case(case_file))
    assert check_paths(webhook) == []


@pytest.mark.parametrize(("case_file", "point"), data_point_params())
def test_data_point(case_file: Path, point: dict[str, Any]) -> None:
    result = result_for(case_file)
    errors = [e for e in result.errors if e.data_point_definition_id == point["id"]]

    if point.get("expected_error"):
        assert errors, f"expected an error for {point['id']}"
        assert point["id"] not in result.data_points
        assert all(e.path == point["path"] for e in errors)
        return

    expected = point["expected"]
    if expected is None:  # optional and absent: no value, no error
        assert point["optional"]
        assert point["id"] not in result.data_points
        assert errors == []
        return

    assert errors == [], [e.message for e in errors]
    actual = result.data_points[point["id"]]
    if point["value_type"] == "date" and "T" in expected:
        # "compare as instant": the stored text is UTC with Z; the instants must be equal.
        assert UTC_DATE_TIME.fullmatch(actual), actual
        assert datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
    else:
        assert actual == expected
        assert type(actual) is type(expected)


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.stem)
def test_only_expected_errors(case_file: Path) -> None:
    case = load_case(case_file)
    expected_ids = {p["id"] for p in case["data_points"] if p.get("expected_error")}
    reported_ids = {e.data_point_definition_id for e in result_for(case_file).errors}
    assert reported_ids == expected_ids


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.stem)
def test_patient_identifier(case_file: Path) -> None:
    case = load_case(case_file)
    result = result_for(case_file)
    identifier = case["patient_identifier"]
    expected = identifier["expected"] if identifier is not None else None
    if expected is None:
        assert result.patient_identifier is None
    else:
        assert result.patient_identifier is not None
        assert result.patient_identifier.model_dump() == expected
