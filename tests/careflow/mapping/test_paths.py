"""JSONPath compiling and evaluation (``careflow.mapping.paths``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from careflow.mapping.paths import InvalidPathError, compile_path, find_first

BODY = {
    "identifier": [
        {"system": "urn:other", "value": "1"},
        {"system": "urn:x", "value": "2"},
    ],
    "first-name": "Ann",
    "url": "Subscription/1/$status",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.identifier[?(@.system=='urn:x')].value", "2"),  # filter
        ("$['first-name']", "Ann"),  # bracketed name
        ("$.url", "Subscription/1/$status"),  # "$" inside a value is just text
    ],
)
def test_paths_with_filters_brackets_and_dollar_in_values(path: str, expected: str) -> None:
    assert find_first(path, BODY) == expected
    assert [datum.value for datum in compile_path(path).find(BODY)] == [expected]


def test_compiling_again_finds_the_same_matches() -> None:
    path = "$.identifier[?(@.system=='urn:x' || @.system=='urn:other')].value"
    first = [datum.value for datum in compile_path(path).find(BODY)]
    again = [datum.value for datum in compile_path(path).find(BODY)]
    assert first == again == ["1", "2"]


@pytest.mark.parametrize(
    "path",
    [
        "$.a[",
        "a..",
        "$[?()]",
        "",
        "   ",
        "$.a[?(@.b==unquoted)]",  # deprecated by jsonpath-ng, removed in 2.0
        "$.a | $.b",
        "$.a[?(@.b=~$.c)]",
    ],
)
def test_compile_path_refuses(path: str) -> None:
    with pytest.raises(InvalidPathError) as caught:
        compile_path(path)
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidPathError):  # a refusal stays a refusal when asked again
        compile_path(path)


def test_regex_filter_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidPathError) as caught:
        compile_path("$.a[?(@.b=~'x+')]")
    assert "regular-expression" in caught.value.reason


def test_find_first() -> None:
    body = {"events": [{"id": None}, {"id": "evt_1"}, {"id": "evt_2"}]}
    assert find_first("$.events[*].id", body) == "evt_1"
    assert find_first("$.nothing", body) is None
    assert find_first("$.events[0].id", body) is None
    assert find_first("$.events[", body) is None  # unparsable: None, never an exception
    assert find_first("$.x", [1, 2]) is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("$.a[/x]", {"a": [{"x": 1}, {"x": "Jane-Secret-Doe"}]}),  # sorting mixed types raises
        ("$.v.`sub(/a/, b)`", {"v": 7, "w": "Jane-Secret-Doe"}),  # string function on a number
    ],
)
def test_find_first_on_a_failing_evaluation_logs_the_path_not_the_body(
    path: str, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="careflow.mapping.paths"):
        assert find_first(path, body) is None
    assert path in caplog.text
    assert "Jane-Secret-Doe" not in caplog.text
