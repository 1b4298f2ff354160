"""Save-time checks (``careflow.mapping.checks``): JSONPaths parse, date formats work."""

from __future__ import annotations

import pytest

from careflow.mapping.checks import _date_format_problem, check_paths
from careflow.models import DataPointMapping, PatientIdentifierMapping, PatientProfileMapping
from tests.careflow.mapping.factories import PROFILE, webhook


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


def test_check_paths_reports_a_bad_path_and_a_bad_format_of_one_mapping() -> None:
    hook = webhook([DataPointMapping(data_point_definition_id="d", path="$.d[", date_format="%Q")])
    assert [(e.code, e.data_point_definition_id) for e in check_paths(hook)] == [
        ("invalid_path", "d"),
        ("invalid_date_format", "d"),
    ]


@pytest.mark.parametrize(
    "date_format",
    ["epoch_s", "epoch_ms", "%d/%m/%Y", "%Y-%m-%dT%H:%M:%S%z", "%G-%V-%u", "100%% %Y"],
)
def test_usable_date_formats(date_format: str) -> None:
    assert _date_format_problem(date_format) is None


@pytest.mark.parametrize(
    ("date_format", "reason"),
    [
        ("YYYY-MM-DD", "% directives"),  # no directive at all
        ("%%", "% directives"),  # a literal percent sign is not a directive
        ("%%Y", "% directives"),
        ("epoch", "% directives"),
        ("%Q", "does not work"),  # unknown directive
        ("%s", "does not work"),  # glibc strftime knows it, strptime does not
        ("%-d", "does not work"),
        ("%G-%m", "does not work"),  # ISO year without ISO week
    ],
)
def test_unusable_date_formats(date_format: str, reason: str) -> None:
    problem = _date_format_problem(date_format)
    assert problem is not None
    assert reason in problem
