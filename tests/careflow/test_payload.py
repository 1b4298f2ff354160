"""Body parsing: media types, BOM, forms, depth, non-finite numbers (contract §4)."""

from __future__ import annotations

import pytest

from careflow.payload import FORM, JSON, MAX_DEPTH, PayloadError, media_type_of, parse_body


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("Application/JSON;charset=ISO-8859-1", JSON),
        ("application/fhir+json", JSON),
        ("application/x-www-form-urlencoded", FORM),
        ('application/x-www-form-urlencoded; boundary="a;b"', FORM),
        (" application/json\t", JSON),
        ("application/jsonx", None),
        ("text/json+xml", None),
        ("application/json\u20ac", None),
        ("text/plain", None),
        (None, None),
        ("", None),
    ],
)
def test_media_types(header: str | None, expected: str | None) -> None:
    assert media_type_of(header) == expected


def test_bom_and_scalars_and_arrays() -> None:
    assert parse_body(b'\xef\xbb\xbf{"a": 1}', JSON) == {"a": 1}
    assert parse_body(b"[1, 2]", JSON) == [1, 2]
    assert parse_body(b'"x"', JSON) == "x"


def test_form_becomes_flat_object_with_lists_for_repeats() -> None:
    assert parse_body(b"a=1&b=x+y&a=2&a=3&c=", FORM) == {"a": ["1", "2", "3"], "b": "x y", "c": ""}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"   \n", "empty_body"),
        (b"{", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"a": NaN}', "non_finite_number"),
        (b"[Infinity]", "non_finite_number"),
        (b"[-Infinity]", "non_finite_number"),
        (b"[1e400]", "non_finite_number"),
        (b"[" + b"9" * 5000 + b"]", "non_finite_number"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nesting_too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting_too_deep"),
    ],
)
def test_refusals(body: bytes, code: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_body(body, JSON)
    assert raised.value.error.code == code


def test_depth_limit_is_inclusive() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert isinstance(parse_body(ok, JSON), list)


@pytest.mark.parametrize("body", [b"mrn=X%FC1", b"mrn=X%E41", b"a=%ff"])
def test_form_escapes_that_are_not_utf_8_are_refused(body: bytes) -> None:
    # Replacing them with U+FFFD would make X%FC1 and X%E41 the same patient identifier.
    with pytest.raises(PayloadError) as refused:
        parse_body(body, FORM)
    assert refused.value.error.code == "invalid_json"


def test_form_utf_8_escapes_decode() -> None:
    assert parse_body(b"name=M%C3%BCller", FORM) == {"name": "Müller"}
