"""Save-time checks of conditions: ``invalid_condition`` naming the rule (contract §5b)."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.conditions.checks import INVALID_CONDITION, check_conditions, check_debounce
from careflow.conditions.models import MAX_DEPTH, ConditionGroup, Debounce


def _check(*rules: dict[str, Any]) -> list[str]:
    errors = check_conditions(ConditionGroup.model_validate({"rules": list(rules)}))
    assert all(e.code == INVALID_CONDITION for e in errors)
    return [e.message for e in errors]


@pytest.mark.parametrize(
    "rule",
    [
        {"path": "$.event", "op": "equals", "value": "BOOKING_CREATED"},
        {"path": "$.score", "op": "gte", "value": "7", "value_type": "number"},
        {"path": "$.at", "op": "lt", "value": "2024-01-01T00:00:00Z", "value_type": "date"},
        {"path": "$.ok", "op": "equals", "value": "yes", "value_type": "boolean"},
        {"path": "$.kind", "op": "in", "value": ["a", "b"]},
        {"path": "$.n", "op": "not_in", "value": [1, "2"], "value_type": "number"},
        {"path": "$.x", "op": "exists"},
        {"path": "$.x", "op": "not_exists", "value_type": "telephone"},  # ignored
        {"path": "$.x", "op": "is_empty"},
        {"path": "$.identifier[?(@.system=='urn:x')].value", "op": "starts_with", "value": "A"},
    ],
)
def test_usable_rules_pass(rule: dict[str, Any]) -> None:
    assert _check(rule) == []


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"path": "$.[", "op": "equals", "value": "x"}, "path does not parse"),
        ({"path": "$.a | $.b", "op": "equals", "value": "x"}, "path does not parse"),
        ({"path": "$.a", "op": "matches", "value": "x"}, "unknown operator"),
        ({"path": "$.a", "op": "equals", "value": 1, "value_type": "json"}, "value_type"),
        ({"path": "$.a", "op": "gt", "value": "x", "value_type": "number"}, "does not coerce"),
        ({"path": "$.a", "op": "gt", "value": "2024-13-01", "value_type": "date"}, "coerce"),
        ({"path": "$.a", "op": "equals", "value": "maybe", "value_type": "boolean"}, "coerce"),
        ({"path": "$.a", "op": "equals", "value": None}, "does not coerce"),
        ({"path": "$.a", "op": "equals", "value": {"k": 1}}, "does not coerce"),
        ({"path": "$.a", "op": "contains", "value": 1, "value_type": "number"}, "string only"),
        ({"path": "$.a", "op": "ends_with", "value": "x", "value_type": "date"}, "string only"),
        ({"path": "$.a", "op": "gt", "value": "b"}, "number or date only"),
        ({"path": "$.a", "op": "lte", "value": True, "value_type": "boolean"}, "number or date"),
        ({"path": "$.a", "op": "in", "value": "a"}, "JSON list"),
        ({"path": "$.a", "op": "in", "value": []}, "JSON list"),
        ({"path": "$.a", "op": "in", "value": list(range(1001)), "value_type": "number"}, "1000"),
        ({"path": "$.a", "op": "not_in", "value": [1, "x"], "value_type": "number"}, "[1]"),
    ],
)
def test_unusable_rules_are_named(rule: dict[str, Any], fragment: str) -> None:
    [message] = _check({"path": "$.ok", "op": "exists"}, rule)
    assert message.startswith("conditions rule 2 ")
    assert fragment in message


def test_nested_rules_are_named_by_position_and_path() -> None:
    errors = check_conditions(
        ConditionGroup.model_validate(
            {
                "rules": [
                    {"path": "$.a", "op": "exists"},
                    {"match": "any", "rules": [{"path": "$.b", "op": "gt", "value": "z"}]},
                ]
            }
        )
    )
    assert [(e.path, e.message.split(":")[0]) for e in errors] == [
        ("$.b", "conditions rule 2.1 (gt)")
    ]


def test_depth_is_bounded() -> None:
    group: dict[str, Any] = {"rules": [{"path": "$.a", "op": "exists"}]}
    for _ in range(MAX_DEPTH):
        group = {"rules": [group]}
    errors = check_conditions(ConditionGroup.model_validate(group))
    assert len(errors) == 1 and "nest" in errors[0].message


def test_debounce_key_path_must_parse() -> None:
    assert check_debounce(Debounce(key_path="$.appointment.id", seconds=30)) == []
    [error] = check_debounce(Debounce(key_path="$.[", seconds=30))
    assert error.code == "invalid_path"
    assert check_debounce(None) == []
