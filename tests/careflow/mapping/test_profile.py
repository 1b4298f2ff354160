"""Patient profile (``careflow.mapping.profile``): optional fields, each coerced on its own."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping.codes import DEFAULT_REGION
from careflow.mapping.profile import ISO_639_1_CODES, SEX_VALUES, _profile
from careflow.models import PatientProfileMapping, RequestError
from tests.careflow.mapping.factories import PROFILE, webhook


def profile_of(
    body: Any, region: str = DEFAULT_REGION, mapping: PatientProfileMapping | None = PROFILE
) -> tuple[dict[str, Any], list[RequestError]]:
    errors: list[RequestError] = []
    profile = _profile(webhook(patient_profile=mapping), body, region, errors)
    return profile, errors


def test_profile_fields() -> None:
    profile, errors = profile_of(
        {
            "first": " Clémence ",
            "last": "du Exemplé",
            "born": "1971-03-14",
            "email": "c@example.org",
            "phone": "(415) 555-2671",
            "sex": "FEMALE",
            "lang": " FR ",
        }
    )
    assert errors == []
    assert profile == {
        "first_name": "Clémence",
        "last_name": "du Exemplé",
        "birth_date": "1971-03-14",
        "email": "c@example.org",
        "phone": "+14155552671",
        "sex": "female",
        "preferred_language": "fr",
    }


def test_profile_absent_fields_are_omitted() -> None:
    body = {"first": None, "last": "", "sex": "  ", "phone": " ", "born": " ", "lang": ""}
    assert profile_of(body) == ({}, [])


def test_no_profile_mapping_gives_an_empty_profile() -> None:
    assert profile_of({"first": "Ann"}, mapping=None) == ({}, [])


def test_profile_phone_uses_the_region() -> None:
    assert profile_of({"phone": "(03) 5550 0101"}, region="AU") == ({"phone": "+61355500101"}, [])


@pytest.mark.parametrize(
    ("field", "path", "value"),
    [
        ("birth_date", "$.born", "1971-03-14T10:00:00Z"),
        ("birth_date", "$.born", "14/03/1971"),
        ("birth_date", "$.born", "1971-02-30"),
        ("birth_date", "$.born", 19710314),
        ("phone", "$.phone", "(03) 5550 0101"),  # not valid in the default region US
        ("sex", "$.sex", "m"),
        ("sex", "$.sex", 1),
        ("preferred_language", "$.lang", "en-US"),
        ("preferred_language", "$.lang", "xx"),
        ("preferred_language", "$.lang", "eng"),
        ("preferred_language", "$.lang", "bh"),
        ("preferred_language", "$.lang", "e"),
        ("preferred_language", "$.lang", 1),
        ("first_name", "$.first", {"given": "Ann"}),
        ("email", "$.email", ["a@example.org"]),
    ],
)
def test_profile_invalid_field(field: str, path: str, value: Any) -> None:
    profile, errors = profile_of({path[2:]: value})
    assert profile == {}
    assert len(errors) == 1
    error = errors[0]
    assert (error.code, error.path, error.data_point_definition_id) == (
        "invalid_profile_field",
        path,
        None,
    )
    assert field in error.message


def test_profile_errors_do_not_stop_other_fields() -> None:
    profile, errors = profile_of({"first": "Ann", "sex": "robot", "lang": "de"})
    assert profile == {"first_name": "Ann", "preferred_language": "de"}
    assert [e.code for e in errors] == ["invalid_profile_field"]


def test_profile_path_problem_is_an_error_of_that_field() -> None:
    mapping = PatientProfileMapping(first_name="$.f[", last_name="$.a[/x]", sex="$.sex")
    profile, errors = profile_of({"a": [{"x": 1}, {"x": "b"}], "sex": "other"}, mapping=mapping)
    assert profile == {"sex": "other"}
    assert [(e.code, e.path) for e in errors] == [
        ("invalid_path", "$.f["),
        ("path_evaluation_failed", "$.a[/x]"),
    ]
    assert "first_name" in errors[0].message
    assert "last_name" in errors[1].message


@pytest.mark.parametrize("sex", sorted(SEX_VALUES))
def test_profile_sex_accepts_its_values_in_any_case(sex: str) -> None:
    assert profile_of({"sex": f" {sex.upper()} "}) == ({"sex": sex}, [])


# --- preferred_language: ISO 639-1 (pycountry) ---------------------------------------------------


def test_iso_639_1_codes() -> None:
    # pycountry (ISO 639-3 data) gives 184 two-letter codes: the old hand-written list (from
    # ISO 639-2) had "bh" (Bihari, a collective code) where pycountry has "sh" (Serbo-Croatian).
    assert len(ISO_639_1_CODES) == 184
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in ISO_639_1_CODES)
    assert {"en", "nl", "fr", "de", "zh", "sh"} <= ISO_639_1_CODES
    assert not {"xx", "bh", "eng", "en-US", "EN"} & ISO_639_1_CODES


@pytest.mark.parametrize("code", ["en", "nl", " NL ", "sh"])
def test_profile_language_accepts_iso_639_1(code: str) -> None:
    assert profile_of({"lang": code}) == ({"preferred_language": code.strip().lower()}, [])
