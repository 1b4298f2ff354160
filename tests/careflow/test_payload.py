"""Body parsing: media types, BOM, forms, depth, non-finite numbers (contract §4)."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.payload import (
    FORM,
    JSON,
    MAX_DEPTH,
    MAX_NODES,
    PayloadError,
    media_type_of,
    parse_body,
)


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
        ("multipart/form-data; boundary=abc", 'multipart/form-data; boundary="abc"'),
        ('Multipart/Form-Data; boundary="a b:c"', 'multipart/form-data; boundary="a b:c"'),
        ("multipart/form-data", None),
        ("multipart/form-data; boundary=" + "x" * 71, None),
        ("multipart/mixed; boundary=abc", None),
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


@pytest.mark.parametrize(
    ("values", "media_type", "extra_nodes"),
    [
        (lambda k: "[" + ",".join(["0"] * k) + "]", JSON, 1),
        (lambda k: "[" + ",".join(["[]"] * k) + "]", JSON, 1),
        (lambda k: "&".join(["a=1"] * k), FORM, 2),
    ],
    ids=["scalars", "containers", "form"],
)
def test_node_cap_counts_every_value_for_every_media_type(
    monkeypatch: pytest.MonkeyPatch, values: Any, media_type: str, extra_nodes: int
) -> None:
    """The bound on what one mapping path can cost (issue 15): at most ``MAX_NODES`` values,
    counting containers, members and elements (a list of k values is k + 1 nodes)."""
    assert MAX_NODES == 100_000
    monkeypatch.setattr("careflow.payload.MAX_NODES", 1000)
    parse_body(values(1000 - extra_nodes).encode(), media_type)  # exactly at the cap
    with pytest.raises(PayloadError) as caught:
        parse_body(values(1001 - extra_nodes).encode(), media_type)
    assert caught.value.error.code == "too_many_nodes"
