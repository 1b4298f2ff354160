"""Every operator × value type on the real sample payloads (contract §5b)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow.conditions.evaluate import evaluate, evaluate_rule
from careflow.conditions.models import ConditionGroup, ConditionRule
from tests.factories import SAMPLES


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / "payloads" / f"{name}.json").read_bytes())


CAL = _sample("calcom-booking-created")
TYPEFORM = _sample("typeform-form-response")
ATHENA = _sample("athenahealth-appointment-create")
FHIR = _sample("fhir-r4-patient-example")
ANSWERS = "$.form_response.answers[*]"

# (payload, path, op, value, value_type, expected outcome)
CASES: list[tuple[Any, str, str, Any, str, bool]] = [
    # string
    (CAL, "$.triggerEvent", "equals", "BOOKING_CREATED", "string", True),
    (CAL, "$.triggerEvent", "equals", "BOOKING_CANCELLED", "string", False),
    (CAL, "$.triggerEvent", "equals", "booking_created", "string", False),  # case-sensitive
    (CAL, "$.triggerEvent", "not_equals", "BOOKING_CANCELLED", "string", True),
    (CAL, "$.triggerEvent", "not_equals", "BOOKING_CREATED", "string", False),
    (CAL, "$.triggerEvent", "in", ["BOOKING_CREATED", "BOOKING_RESCHEDULED"], "string", True),
    (CAL, "$.triggerEvent", "in", ["BOOKING_CANCELLED"], "string", False),
    (CAL, "$.triggerEvent", "not_in", ["BOOKING_CANCELLED", "MEETING_ENDED"], "string", True),
    (CAL, "$.triggerEvent", "not_in", ["BOOKING_CREATED"], "string", False),
    (CAL, "$.payload.title", "contains", "60min", "string", True),
    (CAL, "$.payload.title", "contains", "60MIN", "string", False),
    (CAL, "$.payload.type", "starts_with", "60", "string", True),
    (CAL, "$.payload.type", "starts_with", "min", "string", False),
    (CAL, "$.payload.location", "ends_with", "HQ", "string", True),
    (CAL, "$.payload.location", "ends_with", "hq", "string", False),
    (CAL, "$.payload.length", "equals", "60", "string", True),  # a number read as its JSON text
    (FHIR, "$.resourceType", "equals", "Patient", "string", True),
    (ATHENA, "$.entry[*].resource.type", "equals", "event-notification", "string", True),
    # number
    (CAL, "$.payload.length", "equals", "60", "number", True),  # "60" is 60
    (CAL, "$.payload.length", "equals", 60.0, "number", True),
    (CAL, "$.payload.length", "not_equals", 30, "number", True),
    (CAL, "$.payload.length", "gt", 59, "number", True),
    (CAL, "$.payload.length", "gt", 60, "number", False),
    (CAL, "$.payload.length", "gte", 60, "number", True),
    (CAL, "$.payload.length", "lt", "1e2", "number", True),
    (CAL, "$.payload.length", "lte", 59.5, "number", False),
    (CAL, "$.payload.bookingId", "in", ["91", 92], "number", True),
    (CAL, "$.payload.bookingId", "not_in", [90, 92], "number", True),
    (TYPEFORM, "$.form_response.calculated.score", "gte", 7, "number", True),
    (TYPEFORM, "$.form_response.calculated.score", "gte", "10", "number", False),
    (ATHENA, "$.entry[*].resource.eventsSinceSubscriptionStart", "equals", 1, "number", True),
    # boolean
    (CAL, "$.payload.hideCalendarNotes", "equals", False, "boolean", True),
    (CAL, "$.payload.hideCalendarNotes", "equals", "no", "boolean", True),
    (CAL, "$.payload.hideCalendarNotes", "not_equals", "yes", "boolean", True),
    (CAL, "$.payload.appsStatus[*].success", "equals", True, "boolean", True),  # integer 1
    (CAL, "$.payload.seatsShowAttendees", "in", [True], "boolean", True),
    (CAL, "$.payload.seatsShowAttendees", "not_in", ["t"], "boolean", False),
    (FHIR, "$.active", "equals", "TRUE", "boolean", True),
    # date
    (CAL, "$.payload.startTime", "gt", "2023-05-24T00:00:00Z", "date", True),
    (CAL, "$.payload.startTime", "equals", "2023-05-25", "date", True),  # the UTC date
    (CAL, "$.payload.startTime", "gt", "2023-05-25", "date", False),
    (CAL, "$.payload.startTime", "equals", "2023-05-25T11:30:00+02:00", "date", True),  # instant
    (CAL, "$.payload.startTime", "lt", "2023-05-25T10:30:00+01:00", "date", False),
    (CAL, "$.payload.startTime", "lte", "2023-05-25T09:30:00Z", "date", True),
    (CAL, "$.createdAt", "gte", "2023-05-24", "date", True),
    (CAL, "$.createdAt", "not_equals", "2023-05-23", "date", True),
    (CAL, "$.createdAt", "in", ["2023-05-24", "2024-01-01"], "date", True),
    (CAL, "$.createdAt", "not_in", ["2023-05-24"], "date", False),
    (FHIR, "$.birthDate", "lt", "2000-01-01", "date", True),
    (TYPEFORM, "$.form_response.submitted_at", "gt", "2018-01-18T18:07:02Z", "date", True),
    # presence
    (CAL, "$.payload.uid", "exists", None, "string", True),
    (CAL, "$.payload.cancellationReason", "exists", None, "string", False),
    (CAL, "$.payload.cancellationReason", "not_exists", None, "string", True),
    (CAL, "$.payload.uid", "not_exists", None, "string", False),
    (CAL, "$.payload.description", "is_empty", None, "string", True),  # ""
    (CAL, "$.payload.customInputs", "is_empty", None, "string", True),  # {}
    (CAL, "$.payload.appsStatus[*].errors", "is_empty", None, "string", True),  # []
    (CAL, "$.payload.cancellationReason", "is_empty", None, "string", True),  # missing
    (CAL, "$.payload.title", "is_empty", None, "string", False),
    # JSON null is missing
    (CAL, "$.payload.requiresConfirmation", "exists", None, "string", False),
    (CAL, "$.payload.requiresConfirmation", "is_empty", None, "string", True),
    (CAL, "$.payload.requiresConfirmation", "not_equals", True, "boolean", False),
]


@pytest.mark.parametrize(("payload", "path", "op", "value", "value_type", "expected"), CASES)
def test_operator_on_sample(
    payload: Any, path: str, op: str, value: Any, value_type: str, expected: bool
) -> None:
    rule = ConditionRule(path=path, op=op, value=value, value_type=value_type)
    assert evaluate_rule(rule, payload)[0] is expected


@pytest.mark.parametrize(
    ("op", "value", "value_type", "expected"),
    [
        # Typeform numbers: 5, 2, 3, 4 (four matches).
        ("gte", 5, "number", True),  # one passing match is enough
        ("gt", 5, "number", False),
        ("equals", 2, "number", True),
        ("in", [1, 3], "number", True),
        ("not_equals", 2, "number", False),  # not_* need every match to pass
        ("not_equals", 9, "number", True),
        ("not_in", [2, 9], "number", False),
        ("not_in", [1, 9], "number", True),
    ],
)
def test_several_matches(op: str, value: Any, value_type: str, expected: bool) -> None:
    rule = ConditionRule(path=f"{ANSWERS}.number", op=op, value=value, value_type=value_type)
    assert evaluate_rule(rule, TYPEFORM)[0] is expected


def test_array_matches_contribute_their_elements() -> None:
    labels = f"{ANSWERS}.choices.labels"  # one match: ["London", "Sydney"]
    assert evaluate_rule(ConditionRule(path=labels, op="equals", value="Sydney"), TYPEFORM)[0]
    assert evaluate_rule(ConditionRule(path=labels, op="contains", value="Syd"), TYPEFORM)[0]
    assert not evaluate_rule(ConditionRule(path=labels, op="not_equals", value="Sydney"), TYPEFORM)[
        0
    ]


def test_booleans_of_several_matches() -> None:
    path = f"{ANSWERS}.boolean"  # true, false
    assert evaluate_rule(
        ConditionRule(path=path, op="equals", value=True, value_type="boolean"), TYPEFORM
    )[0]
    assert not evaluate_rule(
        ConditionRule(path=path, op="not_equals", value=True, value_type="boolean"), TYPEFORM
    )[0]


@pytest.mark.parametrize("op", ["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte"])
def test_missing_field_makes_comparisons_false(op: str) -> None:
    value = [1] if op in ("in", "not_in") else 1
    rule = ConditionRule(path="$.payload.nothing", op=op, value=value, value_type="number")
    assert evaluate_rule(rule, CAL) == (False, "missing")


@pytest.mark.parametrize("op", ["contains", "starts_with", "ends_with"])
def test_missing_field_makes_text_operators_false(op: str) -> None:
    assert evaluate_rule(ConditionRule(path="$.nope", op=op, value="x"), CAL) == (False, "missing")


def test_a_match_that_does_not_coerce_passes_no_operator() -> None:
    text = "$.form_response.hidden.user_id"  # "tst000042"
    for op in ("equals", "not_equals", "gt", "lt"):
        rule = ConditionRule(path=text, op=op, value=5, value_type="number")
        assert evaluate_rule(rule, TYPEFORM) == (False, "not_coercible")
    rule = ConditionRule(path=text, op="not_in", value=["2020-01-01"], value_type="date")
    assert evaluate_rule(rule, TYPEFORM) == (False, "not_coercible")


def test_not_equals_fails_when_one_of_several_matches_does_not_coerce() -> None:
    # answers[*].* holds texts, numbers, objects: some matches do not coerce to number.
    rule = ConditionRule(path=f"{ANSWERS}.*", op="not_equals", value=999, value_type="number")
    assert evaluate_rule(rule, TYPEFORM)[0] is False
    rule = ConditionRule(path=f"{ANSWERS}.*", op="equals", value=5, value_type="number")
    assert evaluate_rule(rule, TYPEFORM)[0] is True


def test_top_level_array_and_scalar_bodies() -> None:
    rule = ConditionRule(path="$[*].kind", op="equals", value="a")
    assert evaluate_rule(rule, [{"kind": "b"}, {"kind": "a"}])[0]
    assert evaluate_rule(ConditionRule(path="$", op="gt", value=1, value_type="number"), 2)[0]
    assert evaluate_rule(ConditionRule(path="$.x", op="exists"), "text") == (False, "missing")


def test_path_that_fails_to_evaluate_is_false_for_every_operator() -> None:
    body = {"a": [{"v": 1}, {"v": "x"}]}  # sorting mixed types raises inside jsonpath-ng
    for op in ("exists", "not_exists", "is_empty", "equals"):
        rule = ConditionRule(path="$.a[/v]", op=op, value=1, value_type="number")
        assert evaluate_rule(rule, body) == (False, "path_evaluation_failed")


def test_groups_nest_and_report_every_rule_in_order() -> None:
    conditions = ConditionGroup.model_validate(
        {
            "match": "all",
            "rules": [
                {"path": "$.triggerEvent", "op": "equals", "value": "BOOKING_CREATED"},
                {
                    "match": "any",
                    "rules": [
                        {
                            "path": "$.payload.length",
                            "op": "gt",
                            "value": 90,
                            "value_type": "number",
                        },
                        {"path": "$.payload.status", "op": "in", "value": ["ACCEPTED"]},
                    ],
                },
            ],
        }
    )
    outcome = evaluate(conditions, CAL)
    assert outcome.met is True
    assert [(r.rule, r.path, r.op, r.outcome) for r in outcome.rules] == [
        ("1", "$.triggerEvent", "equals", True),
        ("2", None, "any", True),
        ("2.1", "$.payload.length", "gt", False),
        ("2.2", "$.payload.status", "in", True),
    ]
    cancelled = {**CAL, "triggerEvent": "BOOKING_CANCELLED"}
    assert evaluate(conditions, cancelled).met is False


def test_any_group_needs_one_rule_and_all_every_rule() -> None:
    rules = [
        {
            "path": "$.form_response.calculated.score",
            "op": "gte",
            "value": 7,
            "value_type": "number",
        },
        {"path": "$.event_type", "op": "equals", "value": "form_partial"},
    ]
    assert evaluate(ConditionGroup(match="any", rules=rules), TYPEFORM).met is True
    assert evaluate(ConditionGroup(match="all", rules=rules), TYPEFORM).met is False


def test_outcomes_never_carry_payload_values() -> None:
    conditions = ConditionGroup.model_validate(
        {"rules": [{"path": "$.payload.attendees[*].email", "op": "ends_with", "value": "@x.org"}]}
    )
    dumped = evaluate(conditions, CAL).model_dump_json()
    assert "jane" not in dumped.lower()
    assert "example.com" not in dumped


def test_no_conditions_are_met() -> None:
    assert evaluate(None, CAL).met is True
