"""The cost bounds of condition evaluation (contract §5b; issue 16 review, finding 1).

Behaviour only: the figures (seconds before and after) are measured by the review's scripts and
reported, never asserted here.
"""

from __future__ import annotations

from typing import Any

import pytest

from careflow.conditions import evaluate as evaluate_module
from careflow.conditions.evaluate import MAX_WORK, evaluate, evaluate_rule
from careflow.conditions.models import ConditionGroup, ConditionRule


def _group(match: str, rules: list[dict[str, Any]]) -> ConditionGroup:
    return ConditionGroup.model_validate({"match": match, "rules": rules})


def test_in_list_is_coerced_once_into_a_set() -> None:
    rule = ConditionRule(path="$.a", op="in", value=[f"v{i}" for i in range(1000)])
    assert evaluate_rule(rule, {"a": ["x", "v999"]}) == (True, None)
    cached = rule._expected
    assert cached is not None and "v999" in cached.members
    assert evaluate_rule(rule, {"a": ["x"]}) == (False, None)
    assert rule._expected is cached  # not coerced again


def test_in_numbers_and_dates_keep_their_comparison_rules() -> None:
    numbers = ConditionRule(path="$.n", op="in", value=[1, "2.50"], value_type="number")
    assert evaluate_rule(numbers, {"n": "2.5"}) == (True, None)
    assert evaluate_rule(numbers, {"n": 1.0}) == (True, None)
    assert evaluate_rule(numbers, {"n": 3}) == (False, None)
    dates = ConditionRule(
        path="$.d", op="in", value=["2024-05-01", "2024-06-01T10:00:00Z"], value_type="date"
    )
    assert evaluate_rule(dates, {"d": "2024-05-01T23:00:00Z"}) == (True, None)
    assert evaluate_rule(dates, {"d": "2024-06-01T12:00:00+02:00"}) == (True, None)  # instant
    assert evaluate_rule(dates, {"d": "2024-06-01"}) == (True, None)  # the date-time's date
    assert evaluate_rule(dates, {"d": "2024-06-02"}) == (False, None)
    not_in = ConditionRule(path="$.d[*]", op="not_in", value=["2024-05-01"], value_type="date")
    assert evaluate_rule(not_in, {"d": ["2024-05-02", "oops"]}) == (False, None)
    assert evaluate_rule(not_in, {"d": ["2024-05-02", "2024-05-03"]}) == (True, None)


def test_each_distinct_path_is_evaluated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = evaluate_module._matches

    def counting(path: str, body: Any) -> list[Any]:
        calls.append(path)
        return real(path, body)

    monkeypatch.setattr(evaluate_module, "_matches", counting)
    rules = [{"path": "$..*", "op": "equals", "value": f"no{i}"} for i in range(100)]
    outcome = evaluate(_group("any", rules), {"a": [{"x": i} for i in range(50)]})
    assert not outcome.met
    assert calls == ["$..*"]
    assert len(outcome.rules) == 100


def test_all_and_any_stop_at_the_deciding_rule() -> None:
    body = {"a": 1}
    rules = [
        {"path": "$.a", "op": "equals", "value": "2", "value_type": "number"},
        {"path": "$.a", "op": "exists"},
        {"rules": [{"path": "$.a", "op": "exists"}]},
    ]
    outcome = evaluate(_group("all", rules), body)
    assert not outcome.met
    assert [(o.rule, o.outcome, o.note) for o in outcome.rules] == [
        ("1", False, None),
        ("2", False, "not_evaluated"),
        ("3", False, None),
        ("3.1", False, "not_evaluated"),
    ]
    outcome = evaluate(_group("any", list(reversed(rules))), body)
    assert outcome.met
    assert [(o.rule, o.outcome, o.note) for o in outcome.rules] == [
        ("1", True, None),
        ("1.1", True, None),
        ("2", False, "not_evaluated"),
        ("3", False, "not_evaluated"),
    ]


def test_work_bound_makes_the_rule_and_the_rest_false() -> None:
    body = {"a": [str(i) for i in range(500)], "b": "x"}
    rules = [
        {"path": "$.a[*]", "op": "equals", "value": "nope"},
        {"path": "$.b", "op": "equals", "value": "x"},
        {"rules": [{"path": "$.b", "op": "exists"}]},
    ]
    outcome = evaluate(_group("any", rules), body, max_work=100)
    assert not outcome.met  # past the bound a request is not started
    assert [(o.rule, o.outcome, o.note) for o in outcome.rules] == [
        ("1", False, "work_limit"),
        ("2", False, "work_limit"),
        ("3", False, None),
        ("3.1", False, "work_limit"),
    ]
    # Under the bound the same conditions are met.
    assert evaluate(_group("any", rules), body, max_work=10_000).met
    assert MAX_WORK >= 10_000


def test_review_bodies_finish_within_the_bound() -> None:
    """The review's two bodies: a 1,000-value ``in`` on 100,000 strings, and 100 rules on
    ``$..*`` (smaller body here; the figures are in the report)."""
    rule = ConditionRule(path="$.a", op="in", value=[f"v{i}" for i in range(1000)])
    assert evaluate_rule(rule, {"a": [str(i) for i in range(100_000)]}) == (False, "work_limit")
    rules = [{"path": "$..*", "op": "equals", "value": f"no{i}"} for i in range(100)]
    body = {"a": [{"x": i, "y": [i, i + 1], "z": {"w": str(i)}} for i in range(20_000)]}
    outcome = evaluate(_group("any", rules), body)
    assert not outcome.met
    assert {o.note for o in outcome.rules} == {"work_limit"}
