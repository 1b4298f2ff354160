"""Evaluate a webhook's conditions on a parsed payload (contract §5b). Pure; never raises.

Rules, where the contract leaves room:

* A rule's path is evaluated like a mapping path (:mod:`careflow.mapping.paths`); JSON ``null``
  matches are dropped, and no remaining match means *missing*. A path that fails to evaluate on
  this body is treated like a missing field, but makes ``not_exists`` and ``is_empty`` false too.
* For the comparing operators a match that is a JSON array contributes its elements (one level,
  as for ``strings_array``), so ``$.labels`` ``equals`` ``"London"`` holds when one label is.
  ``exists``, ``not_exists`` and ``is_empty`` look at matches as they are.
* Each compared element and the rule's ``value`` are coerced to ``value_type`` by the data point
  coercers of contract §5 (dates without ``date_format``: ISO 8601 extended forms only). An element
  that does not coerce does not pass, for any operator.
* Several matches: ``equals in contains starts_with ends_with gt gte lt lte is_empty`` need one
  passing match; ``not_equals`` and ``not_in`` need every match to pass; ``exists`` needs one
  non-null match, ``not_exists`` none.
* Dates: two date-times compare as instants, two dates as dates, and a date against a date-time
  compares the date-time's UTC date.
* Every rule is evaluated (no short cut), so each one's outcome can be reported.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from careflow.conditions.models import (
    ConditionGroup,
    ConditionRule,
    ConditionsOutcome,
    RuleNote,
    RuleOutcome,
)
from careflow.mapping.codes import DEFAULT_REGION
from careflow.mapping.coerce import (
    _INVALID,
    _coerce_boolean,
    _coerce_date,
    _coerce_number,
    _coerce_string,
    _Coercer,
)
from careflow.mapping.paths import InvalidPathError, _EvaluationFailed, _matches

COERCERS: dict[str, _Coercer] = {
    "string": _coerce_string,
    "number": _coerce_number,
    "boolean": _coerce_boolean,
    "date": _coerce_date,
}
_NEGATIVE = frozenset({"not_equals", "not_in"})
_PRESENCE = frozenset({"exists", "not_exists", "is_empty"})


def coerce(value: Any, value_type: str) -> Any:
    """``value`` read as ``value_type`` (string, number, boolean, date) by contract §5's rules.

    Returns:
        The coerced value (dates as normalised ISO text), or ``None`` when it does not coerce.
    """
    coercer = COERCERS.get(value_type)
    if coercer is None or value is None:
        return None
    result = coercer(value, None, DEFAULT_REGION)
    return None if result is _INVALID else result


def _date_key(text: str) -> date | datetime:
    if "T" in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return date.fromisoformat(text)


def _compare(left: Any, right: Any, value_type: str) -> int:
    """-1, 0 or 1 for two coerced values of ``value_type`` (dates per the module's rules)."""
    if value_type == "date":
        a, b = _date_key(left), _date_key(right)
        if isinstance(a, datetime) != isinstance(b, datetime):
            a = a.date() if isinstance(a, datetime) else a
            b = b.date() if isinstance(b, datetime) else b
        return (a > b) - (a < b)  # type: ignore[operator]
    return (left > right) - (left < right)


def _passes(op: str, element: Any, expected: Any, value_type: str) -> bool:
    """Whether one coerced element passes ``op`` against the coerced rule value."""
    if op in ("equals", "not_equals"):
        same = _compare(element, expected, value_type) == 0
        return same if op == "equals" else not same
    if op in ("in", "not_in"):
        inside = any(_compare(element, item, value_type) == 0 for item in expected)
        return inside if op == "in" else not inside
    if op == "contains":
        return bool(expected in element)
    if op == "starts_with":
        return bool(element.startswith(expected))
    if op == "ends_with":
        return bool(element.endswith(expected))
    order = _compare(element, expected, value_type)
    return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]


def _is_empty(value: Any) -> bool:
    return value == "" or value == [] or value == {}


def _expected(rule: ConditionRule) -> Any:
    """The rule's value coerced to its type (a list for in/not_in); None when unusable."""
    if rule.op in ("in", "not_in"):
        if not isinstance(rule.value, list):
            return None
        items = [coerce(item, rule.value_type) for item in rule.value]
        return None if any(item is None for item in items) else items
    return coerce(rule.value, rule.value_type)


def evaluate_rule(rule: ConditionRule, body: Any) -> tuple[bool, RuleNote | None]:
    """One rule on a parsed body.

    Args:
        rule: A rule that passed the save checks (an unusable one is simply false).
        body: The parsed JSON body.

    Returns:
        (outcome, note): ``note`` is ``missing`` (no non-null match), ``not_coercible`` (matches
        exist but none coerced to the rule's type) or ``path_evaluation_failed``; else None.
    """
    try:
        matches = [m for m in _matches(rule.path, body) if m is not None]
    except (InvalidPathError, _EvaluationFailed):
        return False, "path_evaluation_failed"
    if rule.op in _PRESENCE:
        if rule.op == "exists":
            return bool(matches), None if matches else "missing"
        if rule.op == "not_exists":
            return not matches, None
        return (not matches or any(_is_empty(m) for m in matches)), None
    if not matches:
        return False, "missing"
    expected = _expected(rule)
    if expected is None:
        return False, None
    elements: list[Any] = []
    for match in matches:
        elements.extend(match if isinstance(match, list) else [match])
    coerced = [coerce(e, rule.value_type) for e in elements]
    usable = [c for c in coerced if c is not None]
    if not usable:
        # An empty array matched (no element): nothing passes; else nothing coerced.
        return False, "not_coercible" if elements else "missing"
    try:
        if rule.op in _NEGATIVE:
            return len(usable) == len(coerced) and all(
                _passes(rule.op, c, expected, rule.value_type) for c in usable
            ), None
        return any(_passes(rule.op, c, expected, rule.value_type) for c in usable), None
    except (TypeError, ValueError, KeyError):  # an op/type pair the save checks refuse
        return False, None


def evaluate(conditions: ConditionGroup | None, body: Any) -> ConditionsOutcome:
    """Whether ``body`` meets ``conditions``, with every rule's and nested group's outcome.

    Args:
        conditions: The webhook's conditions; None means none (always met).
        body: The parsed JSON body (any JSON value).

    Returns:
        ``ConditionsOutcome(met, rules)``; ``rules`` lists rules and nested groups depth first
        in configuration order, naming each by position (``"1"``, ``"2.1"``) with its path and
        operator, never a payload value.
    """
    if conditions is None:
        return ConditionsOutcome(met=True)
    outcomes: list[RuleOutcome] = []
    met = _group(conditions, body, "", outcomes)
    return ConditionsOutcome(met=met, rules=outcomes)


def _group(group: ConditionGroup, body: Any, prefix: str, outcomes: list[RuleOutcome]) -> bool:
    results: list[bool] = []
    for index, entry in enumerate(group.rules, start=1):
        name = f"{prefix}{index}"
        if isinstance(entry, ConditionGroup):
            at = len(outcomes)
            outcomes.append(RuleOutcome(rule=name, op=entry.match, outcome=False))
            result = _group(entry, body, f"{name}.", outcomes)
            outcomes[at] = RuleOutcome(rule=name, op=entry.match, outcome=result)
        else:
            result, note = evaluate_rule(entry, body)
            outcomes.append(
                RuleOutcome(rule=name, path=entry.path, op=entry.op, outcome=result, note=note)
            )
        results.append(result)
    return all(results) if group.match == "all" else any(results)
