"""Save-time checks of a webhook's conditions and debounce (``invalid_condition``, 422)."""

from __future__ import annotations

from careflow.conditions.evaluate import coerce
from careflow.conditions.models import (
    MAX_DEPTH,
    MAX_RULES,
    OPERATORS,
    VALUE_TYPES,
    ConditionGroup,
    ConditionRule,
    Debounce,
)
from careflow.mapping.codes import INVALID_PATH
from careflow.mapping.paths import InvalidPathError, _compile_cached
from careflow.models import RequestError

INVALID_CONDITION = "invalid_condition"

# Each match is compared with each listed value: bound the work a request can cost.
MAX_LIST_VALUES = 1000
_ORDERED = frozenset({"gt", "gte", "lt", "lte"})
_TEXT = frozenset({"contains", "starts_with", "ends_with"})
_PRESENCE = frozenset({"exists", "not_exists", "is_empty"})


def _problem(rule: ConditionRule) -> str | None:
    """What is wrong with one rule, or None (contract §5b)."""
    compiled = _compile_cached(rule.path)
    if isinstance(compiled, InvalidPathError):
        return f"path does not parse: {compiled.reason}"
    if rule.op not in OPERATORS:
        return f"unknown operator; use one of {', '.join(OPERATORS)}"
    if rule.op in _PRESENCE:
        return None
    if rule.value_type not in VALUE_TYPES:
        return f"value_type must be one of {', '.join(VALUE_TYPES)}"
    if rule.op in _TEXT and rule.value_type != "string":
        return f"{rule.op} is for value_type string only"
    if rule.op in _ORDERED and rule.value_type not in ("number", "date"):
        return f"{rule.op} is for value_type number or date only"
    if rule.op in ("in", "not_in"):
        if not isinstance(rule.value, list) or not rule.value:
            return f"{rule.op} takes a non-empty JSON list as value"
        if len(rule.value) > MAX_LIST_VALUES:
            return f"{rule.op} takes at most {MAX_LIST_VALUES} values"
        bad = [i for i, item in enumerate(rule.value) if coerce(item, rule.value_type) is None]
        if bad:
            return f"value elements {bad} do not coerce to {rule.value_type}"
        return None
    if coerce(rule.value, rule.value_type) is None:
        return f"value does not coerce to {rule.value_type}"
    return None


def check_conditions(conditions: ConditionGroup | None) -> list[RequestError]:
    """Check a webhook's conditions when it is saved (never at request time).

    Compiles (and so caches) every rule's path, checks the operator, the value type, the
    operator/type pair and that the rule's ``value`` coerces to its type.

    Args:
        conditions: The conditions about to be stored; None is fine.

    Returns:
        One ``invalid_condition`` error per unusable rule, naming it by position (``rule 2.1``)
        with its ``path``; one for conditions nested deeper than ``MAX_DEPTH`` or holding more
        than ``MAX_RULES`` rules. Empty when the conditions are usable.
    """
    errors: list[RequestError] = []
    if conditions is None:
        return errors
    count = 0

    def walk(group: ConditionGroup, prefix: str, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            errors.append(
                RequestError(
                    code=INVALID_CONDITION,
                    message=f"conditions rule {prefix.rstrip('.') or 'group'}: groups nest "
                    f"at most {MAX_DEPTH} deep",
                )
            )
            return
        for index, entry in enumerate(group.rules, start=1):
            name = f"{prefix}{index}"
            if isinstance(entry, ConditionGroup):
                walk(entry, f"{name}.", depth + 1)
                continue
            count += 1
            problem = _problem(entry)
            if problem is not None:
                errors.append(
                    RequestError(
                        code=INVALID_CONDITION,
                        message=f"conditions rule {name} ({entry.op}): {problem}",
                        path=entry.path,
                    )
                )

    walk(conditions, "", 1)
    if count > MAX_RULES:
        errors.append(
            RequestError(
                code=INVALID_CONDITION,
                message=f"conditions hold {count} rules; at most {MAX_RULES}",
            )
        )
    return errors


def check_debounce(debounce: Debounce | None) -> list[RequestError]:
    """An ``invalid_path`` error when the debounce's ``key_path`` does not parse."""
    if debounce is None:
        return []
    compiled = _compile_cached(debounce.key_path)
    if isinstance(compiled, InvalidPathError):
        return [
            RequestError(
                code=INVALID_PATH,
                message=f"debounce key_path does not parse: {compiled.reason}",
                path=debounce.key_path,
            )
        ]
    return []
