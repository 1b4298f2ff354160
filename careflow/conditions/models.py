"""Models of webhook conditions, debounce and the IGNORED reasons (contract §2, §5b).

Imports nothing from ``careflow`` but ``careflow.text`` (``careflow.models`` imports this
module). Operators and value types are plain strings here and checked at save by
:mod:`careflow.conditions.checks`, so a wrong one is answered ``invalid_condition`` naming
the rule, like every other condition problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    model_validator,
)

from careflow.text import check_text

OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "not_exists",
    "is_empty",
)
VALUE_TYPES: tuple[str, ...] = ("string", "number", "boolean", "date")

# Reason codes of an IGNORED request (contract §3).
CONDITIONS_NOT_MET = "conditions_not_met"
ALREADY_ENROLLED = "already_enrolled"
DEBOUNCED = "debounced"

# Bounds on a webhook's conditions, so evaluating them stays cheap on any payload.
MAX_RULES = 100
MAX_DEPTH = 5


class ConditionRule(BaseModel):
    """One comparison: the matches of ``path`` against ``value``, both read as ``value_type``.

    ``value`` is any JSON value (a JSON list for ``in``/``not_in``; unused by ``exists``,
    ``not_exists`` and ``is_empty``, which also ignore ``value_type``).
    """

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=2048)
    op: str
    value: Any = None
    value_type: str = "string"
    # The value coerced for evaluation, kept once computed (careflow.conditions.evaluate).
    _expected: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid_text(self) -> ConditionRule:
        # Preview and test proposals too, not only stored webhooks: answers are UTF-8 JSON.
        check_text([self.path, self.value])
        return self


def _entry_kind(value: Any) -> str:
    """A group has ``rules`` (or ``match``); anything else is read as a rule, so a malformed
    entry gets the errors of one model, not of both."""
    if isinstance(value, dict):
        return "group" if "rules" in value or "match" in value else "rule"
    return "group" if isinstance(value, ConditionGroup) else "rule"


class ConditionGroup(BaseModel):
    """``match: all`` needs every rule to hold, ``any`` one; rules may be nested groups."""

    model_config = ConfigDict(extra="forbid")

    match: Literal["all", "any"] = "all"
    rules: list[
        Annotated[
            Annotated[ConditionRule, Tag("rule")] | Annotated[ConditionGroup, Tag("group")],
            Discriminator(_entry_kind),
        ]
    ] = Field(min_length=1, max_length=MAX_RULES)


class Debounce(BaseModel):
    """A second request with the same value at ``key_path`` within ``seconds`` is IGNORED."""

    model_config = ConfigDict(extra="forbid")

    key_path: str = Field(min_length=1, max_length=2048)
    seconds: int = Field(ge=1, le=86_400)

    @model_validator(mode="after")
    def _valid_text(self) -> Debounce:
        check_text(self.key_path)
        return self


RuleNote = Literal[
    "missing", "not_coercible", "path_evaluation_failed", "not_evaluated", "work_limit"
]


class RuleOutcome(BaseModel):
    """How one rule (or nested group) came out on one payload; never a payload value.

    ``rule`` is its 1-based position (``"2.1"``: first rule of the second entry, a group);
    a group has ``op`` ``all``/``any`` and no ``path``. ``note`` says why a rule is false
    when the field is missing or no match coerced to the rule's type.
    """

    rule: str
    path: str | None = None
    op: str
    outcome: bool
    note: RuleNote | None = None


class ConditionsOutcome(BaseModel):
    """The verdict of a webhook's conditions on one payload, with every rule's outcome."""

    met: bool
    rules: list[RuleOutcome] = Field(default_factory=list)


class IgnoredReason(BaseModel):
    """Why a request is IGNORED: ``conditions_not_met`` (with ``rules``), ``already_enrolled``
    (with the active ``care_flow_id``) or ``debounced`` (with the first ``request_id``)."""

    code: str
    message: str
    rules: list[RuleOutcome] | None = None
    care_flow_id: str | None = None
    request_id: str | None = None
