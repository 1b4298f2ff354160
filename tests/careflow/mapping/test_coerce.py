"""Value coercers (``careflow.mapping.coerce``): JSON value → stored value, per value type (§5)."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.mapping.codes import DEFAULT_REGION
from careflow.mapping.coerce import (
    _INVALID,
    _coerce_boolean,
    _coerce_date,
    _coerce_json,
    _coerce_number,
    _coerce_string,
    _coerce_telephone,
)

# --- number (RFC 8259 §6 grammar) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (-7, -7),
        (0, 0),
        (1.5, 1.5),
        (-3.5, -3.5),
        ("42", 42),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        ("1E+2", 100.0),
        ("2.5e-3", 0.0025),
        (" 42\n", 42),
        ("\t-0 ", 0),
        ("12345678901234567890123", 12345678901234567890123),
    ],
)
def test_number_accepts(value: Any, expected: Any) -> None:
    actual = _coerce_number(value, None, DEFAULT_REGION)
    assert actual == expected
    assert type(actual) is type(expected)


@pytest.mark.parametrize(
    "value",
    [
        "1_000",
        "inf",
        "-inf",
        "Infinity",
        "NaN",
        "nan",
        "+1",
        "01",
        "1.",
        ".5",
        "1e",
        "0x10",
        "",
        "   ",
        "4 2",
        "١٢",  # Arabic-Indic digits: int() would accept them
        "1e400",  # finite grammar, infinite float
        pytest.param("9" * 5000, id="5000-digits"),  # beyond Python's int/str conversion limit
        True,
        False,
        float("inf"),
        float("nan"),
        [1],
        {"n": 1},
    ],
)
def test_number_rejects(value: Any) -> None:
    assert _coerce_number(value, None, DEFAULT_REGION) is _INVALID


# --- boolean -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        (" Yes ", True),
        ("no", False),
        ("T", True),
        ("f", False),
        ("y", True),
        ("N", False),
        ("1", True),
        (" 0\n", False),
    ],
)
def test_boolean_accepts(value: Any, expected: bool) -> None:
    assert _coerce_boolean(value, None, DEFAULT_REGION) is expected


@pytest.mark.parametrize("value", [2, -1, 1.0, 0.0, "maybe", "", "on", "yes!", [], {}, [True]])
def test_boolean_rejects(value: Any) -> None:
    assert _coerce_boolean(value, None, DEFAULT_REGION) is _INVALID


# --- string --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("du Exemplé", "du Exemplé"),
        ("  kept as sent  ", "  kept as sent  "),
        ("", ""),
        (1, "1"),
        (-20, "-20"),
        (1.5, "1.5"),
        (1e16, "1e+16"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_string_accepts(value: Any, expected: str) -> None:
    assert _coerce_string(value, None, DEFAULT_REGION) == expected


@pytest.mark.parametrize(
    "value",
    [{}, {"a": "b"}, [], ["a"], float("nan"), pytest.param(10**5000, id="int-5001-digits")],
)
def test_string_rejects(value: Any) -> None:
    assert _coerce_string(value, None, DEFAULT_REGION) is _INVALID


# --- json ----------------------------------------------------------------------------------------


def test_json_keeps_the_value_itself() -> None:
    value = {"a": [1, {"b": None}]}
    assert _coerce_json(value, None, DEFAULT_REGION) is value  # not a copy


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_json_refuses_non_finite_numbers(value: float) -> None:
    assert _coerce_json(value, None, DEFAULT_REGION) is _INVALID


# --- date (ISO 8601 extended; date_format) -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1971-03-14", "1971-03-14"),
        (" 2005-10-15 ", "2005-10-15"),
        ("2023-04-14T09:22:57.517+00:00", "2023-04-14T09:22:57.517000Z"),
        ("2023-04-14T09:22:56Z", "2023-04-14T09:22:56Z"),
        ("1971-03-14T14:35:45-05:00", "1971-03-14T19:35:45Z"),
        ("2023-01-01T01:00+02:00", "2022-12-31T23:00:00Z"),
        ("2023-04-14T09:22Z", "2023-04-14T09:22:00Z"),
        ("2023-04-14T09:22:57,25Z", "2023-04-14T09:22:57.250000Z"),
        ("2023-04-14T09:22:57.1234567Z", "2023-04-14T09:22:57.123456Z"),
        ("0999-01-01", "0999-01-01"),
    ],
)
def test_date_accepts_iso_8601_extended(value: str, expected: str) -> None:
    assert _coerce_date(value, None, DEFAULT_REGION) == expected


@pytest.mark.parametrize(
    "value",
    [
        "200808151030-0700",  # basic format: fromisoformat reads it as another instant
        "20080815",
        "2008-08-15T10:30:00",  # date-time without offset needs a date_format
        "2023-04-14 09:22:57Z",  # space separator is not ISO 8601 extended
        "2023-04-14t09:22:57z",
        "2023-W01-1",
        "2023-02-30",
        "2023-13-01",
        "2023-04-14T24:00Z",
        "2023-04-14T23:59:60Z",
        "2023-04-14T09:22:57+0200",
        "2023-04-14T09:22:57+24:00",
        "0001-01-01T00:30+01:00",  # before year 1 in UTC
        "14/03/1971",
        "yesterday",
        "",
        1684920600,
        True,
        ["2023-01-01"],
    ],
)
def test_date_rejects_without_format(value: Any) -> None:
    assert _coerce_date(value, None, DEFAULT_REGION) is _INVALID


@pytest.mark.parametrize(
    ("value", "date_format", "expected"),
    [
        ("14/03/1971", "%d/%m/%Y", "1971-03-14"),
        ("Mar 14 1971", "%b %d %Y", "1971-03-14"),
        ("2023-04-14 09:22:57", "%Y-%m-%d %H:%M:%S", "2023-04-14T09:22:57Z"),  # naive → UTC
        ("2008-08-15T10:30:00", "%Y-%m-%dT%H:%M:%S", "2008-08-15T10:30:00Z"),
        ("200808151030-0700", "%Y%m%d%H%M%z", "2008-08-15T17:30:00Z"),
        ("14.03.1971 14:35 +0100", "%d.%m.%Y %H:%M %z", "1971-03-14T13:35:00Z"),
        (1684920600, "epoch_s", "2023-05-24T09:30:00Z"),
        ("1684920600", "epoch_s", "2023-05-24T09:30:00Z"),
        (1684920600.5, "epoch_s", "2023-05-24T09:30:00.500000Z"),
        (1684920600538, "epoch_ms", "2023-05-24T09:30:00.538000Z"),
        (" 1684920600538 ", "epoch_ms", "2023-05-24T09:30:00.538000Z"),
        (0, "epoch_s", "1970-01-01T00:00:00Z"),
        (-86400, "epoch_s", "1969-12-31T00:00:00Z"),
        # ISO 8601 extended forms stay accepted with a date_format:
        ("2023-04-14T09:22:56Z", "%d/%m/%Y", "2023-04-14T09:22:56Z"),
        ("1971-03-14", "epoch_s", "1971-03-14"),
    ],
)
def test_date_with_format(value: Any, date_format: str, expected: str) -> None:
    assert _coerce_date(value, date_format, DEFAULT_REGION) == expected


@pytest.mark.parametrize(
    ("value", "date_format"),
    [
        ("1971-14-03", "%Y-%d-%m-x"),
        ("31/02/2020", "%d/%m/%Y"),
        (1684920600, "%d/%m/%Y"),
        (True, "epoch_s"),
        ("1_684_920_600", "epoch_s"),
        (1e20, "epoch_s"),
        (float("inf"), "epoch_ms"),
        ("soon", "epoch_ms"),
    ],
)
def test_date_with_format_rejects(value: Any, date_format: str) -> None:
    assert _coerce_date(value, date_format, DEFAULT_REGION) is _INVALID


# --- telephone (E.164 via phonenumbers) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+33 (261) 910042", "US", "+33261910042"),  # explicit +CC wins over region US
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("tel:+1-415-555-2671", "US", "+14155552671"),
        ("(03) 5550 0101", "AU", "+61355500101"),
        ("020 7946 0958", "GB", "+442079460958"),
        (14155552671, "US", "+14155552671"),
    ],
)
def test_telephone_accepts(value: Any, region: str, expected: str) -> None:
    assert _coerce_telephone(value, None, region) == expected


@pytest.mark.parametrize(
    "value",
    [
        "(03) 5550 0101",  # parses as +1 0355500101 but is not a valid number
        "12",
        "not a phone",
        "",
        "+999 123 456",
        "+1" + "5" * 300,
        True,
        -14155552671,
        4155552671.0,
        ["+14155552671"],
    ],
)
def test_telephone_rejects(value: Any) -> None:
    assert _coerce_telephone(value, None, "US") is _INVALID
