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
* Cost is bounded, because conditions run on every request: an ``in`` list is coerced once per
  rule into a set (O(1) membership); each distinct path is evaluated once per body; ``all`` stops at
  its first false rule and ``any`` at its first true one (the rest are reported ``not_evaluated``);
  and the work per request (one unit per match found, per element compared) is bounded by
  ``MAX_WORK``: a rule that reaches it is false with note ``work_limit``, and so is every rule
  after it. No operator negates a group, so a false rule never makes conditions met that
  otherwise would not be: past the bound a request is IGNORED rather than started.
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

# Work bound of one evaluation: matches found plus elements compared, all rules together.
MAX_WORK = 100_000


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


class _Expected:
    """A rule's value coerced once (cached on the rule): a scalar, or for ``in``/``not_in`` a
    set so membership costs O(1) whatever the list's length (dates: see :func:`_member`)."""

    def __init__(self, rule: ConditionRule) -> None:
        self.usable = True
        self.value: Any = None
        self.members: frozenset[Any] = frozenset()
        self.date_members: frozenset[date] = frozenset()
        if rule.op in ("in", "not_in"):
            items = (
                [coerce(item, rule.value_type) for item in rule.value]
                if isinstance(rule.value, list)
                else [None]
            )
            if any(item is None for item in items):
                self.usable = False
                return
            if rule.value_type == "date":
                keys = [_date_key(str(item)) for item in items]
                self.members = frozenset(keys)
                # A date-time listed matches an element that is its date (contract §5b).
                self.date_members = frozenset(
                    k.date() if isinstance(k, datetime) else k for k in keys
                )
            else:
                self.members = frozenset(items)
        else:
            self.value = coerce(rule.value, rule.value_type)
            self.usable = self.value is not None


def _expected(rule: ConditionRule) -> _Expected:
    """The rule's coerced value, computed on first use and kept on the rule (which lives as
    long as the configuration snapshot holding it)."""
    cached = rule._expected
    if cached is None:
        cached = _Expected(rule)
        rule._expected = cached
    return cached  # type: ignore[no-any-return]


def _member(element: Any, expected: _Expected, value_type: str) -> bool:
    if value_type != "date":
        return element in expected.members
    key = _date_key(element)
    if isinstance(key, datetime):
        return key in expected.members or key.date() in expected.date_members
    return key in expected.date_members


def _passes(op: str, element: Any, expected: _Expected, value_type: str) -> bool:
    """Whether one coerced element passes ``op`` against the coerced rule value."""
    if op in ("in", "not_in"):
        inside = _member(element, expected, value_type)
        return inside if op == "in" else not inside
    value = expected.value
    if op in ("equals", "not_equals"):
        same = _compare(element, value, value_type) == 0
        return same if op == "equals" else not same
    if op == "contains":
        return bool(value in element)
    if op == "starts_with":
        return bool(element.startswith(value))
    if op == "ends_with":
        return bool(element.endswith(value))
    order = _compare(element, value, value_type)
    return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]


def _is_empty(value: Any) -> bool:
    return value == "" or value == [] or value == {}


class _OverBudget(Exception):
    """The request's evaluation work reached ``MAX_WORK``."""


class _Context:
    """One evaluation: the matches of each distinct path (each path is evaluated once per
    body) and the work done so far, in units of one match found or one element compared."""

    def __init__(self, body: Any, max_work: int) -> None:
        self.body = body
        self.left = max_work
        self.paths: dict[str, list[Any] | str] = {}

    def charge(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise _OverBudget

    def matches(self, path: str) -> list[Any]:
        """Non-null matches of ``path``; raises _EvaluationFailed / _OverBudget."""
        found = self.paths.get(path)
        if found is None:
            if self.left <= 0:
                raise _OverBudget
            try:
                found = [m for m in _matches(path, self.body) if m is not None]
            except (InvalidPathError, _EvaluationFailed):
                found = "path_evaluation_failed"
            self.paths[path] = found
            self.charge(1 + (len(found) if isinstance(found, list) else 0))
        if isinstance(found, str):
            raise _EvaluationFailed(found)
        return found


def evaluate_rule(
    rule: ConditionRule, body: Any, *, max_work: int | None = None
) -> tuple[bool, RuleNote | None]:
    """One rule on a parsed body.

    Args:
        rule: A rule that passed the save checks (an unusable one is simply false).
        body: The parsed JSON body.
        max_work: The work bound (default ``MAX_WORK``).

    Returns:
        (outcome, note): ``note`` is ``missing`` (no non-null match), ``not_coercible`` (matches
        exist but none coerced to the rule's type), ``path_evaluation_failed`` or
        ``work_limit`` (the bound was reached: false); else None.
    """
    context = _Context(body, MAX_WORK if max_work is None else max_work)
    try:
        return _rule(rule, context)
    except _OverBudget:
        return False, "work_limit"


def _rule(rule: ConditionRule, context: _Context) -> tuple[bool, RuleNote | None]:
    try:
        matches = context.matches(rule.path)
    except _EvaluationFailed:
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
    if not expected.usable:
        return False, None
    negative = rule.op in _NEGATIVE
    seen = uncoerced = False
    try:
        for match in matches:
            for element in match if isinstance(match, list) else (match,):
                context.charge(1)
                value = coerce(element, rule.value_type)
                if value is None:
                    uncoerced = True  # fails a negative rule, which needs every match
                    continue
                seen = True
                passed = _passes(rule.op, value, expected, rule.value_type)
                if negative and not passed:
                    return False, None
                if not negative and passed:
                    return True, None
    except (TypeError, ValueError, KeyError):  # an op/type pair the save checks refuse
        return False, None
    if not seen:
        # An empty array matched (no element): nothing passes; else nothing coerced.
        has_elements = any(not (isinstance(m, list) and not m) for m in matches)
        return False, "not_coercible" if has_elements else "missing"
    return negative and not uncoerced, None


def evaluate(
    conditions: ConditionGroup | None, body: Any, *, max_work: int | None = None
) -> ConditionsOutcome:
    """Whether ``body`` meets ``conditions``, with every rule's and nested group's outcome.

    Args:
        conditions: The webhook's conditions; None means none (always met).
        body: The parsed JSON body (any JSON value).
        max_work: The work bound for the whole evaluation (default ``MAX_WORK``).

    Returns:
        ``ConditionsOutcome(met, rules)``; ``rules`` lists rules and nested groups depth first
        in configuration order, naming each by position (``"1"``, ``"2.1"``) with its path and
        operator, never a payload value. Rules after a group's outcome is known are listed
        false with note ``not_evaluated``; rules reached once the work bound is spent, false
        with note ``work_limit``.
    """
    if conditions is None:
        return ConditionsOutcome(met=True)
    outcomes: list[RuleOutcome] = []
    context = _Context(body, MAX_WORK if max_work is None else max_work)
    met = _group(conditions, context, "", outcomes, skip=None)
    return ConditionsOutcome(met=met, rules=outcomes)


def _group(
    group: ConditionGroup,
    context: _Context,
    prefix: str,
    outcomes: list[RuleOutcome],
    skip: RuleNote | None,
) -> bool:
    """Evaluate ``group`` into ``outcomes``; with ``skip`` set, only list its rules as false
    with that note. ``all`` stops at its first false rule, ``any`` at its first true one."""
    decided: bool | None = None
    for index, entry in enumerate(group.rules, start=1):
        name = f"{prefix}{index}"
        note = skip if skip is not None else ("not_evaluated" if decided is not None else None)
        if isinstance(entry, ConditionGroup):
            at = len(outcomes)
            outcomes.append(RuleOutcome(rule=name, op=entry.match, outcome=False))
            result = _group(entry, context, f"{name}.", outcomes, note)
            outcomes[at] = RuleOutcome(rule=name, op=entry.match, outcome=result)
        else:
            if note is not None:
                result = False
            else:
                try:
                    result, note = _rule(entry, context)
                except _OverBudget:
                    result, note = False, "work_limit"
            outcomes.append(
                RuleOutcome(rule=name, path=entry.path, op=entry.op, outcome=result, note=note)
            )
        if skip is None and context.left < 0:
            skip = "work_limit"
        if skip is None and decided is None:
            if group.match == "all" and not result:
                decided = False
            elif group.match == "any" and result:
                decided = True
    if skip is not None and decided is None:
        return False
    return decided if decided is not None else group.match == "all"
