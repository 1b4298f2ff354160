"""``careflow.mapping.suggest``: candidate paths by name and type, with their mapped values."""

from __future__ import annotations

import json
from typing import Any

from careflow.mapping.suggest import suggest, words
from careflow.models import CareFlowDefinition, ValueRange
from tests.factories import ROOT, sample_payload


def _calcom() -> tuple[CareFlowDefinition, Any]:
    case = json.loads(
        (ROOT / "tests/fixtures/samples/cases/calcom-booking-created.json").read_text()
    )
    points = [
        {k: v for k, v in p.items() if k in ("id", "value_type", "optional")}
        for p in case["data_points"]
    ]
    definition = CareFlowDefinition(
        id="booking", title="Booking", published=True, data_point_definitions=points
    )
    return definition, json.loads(sample_payload("calcom-booking-created"))


def test_words() -> None:
    assert words("startTime") == ["start", "time"]
    assert words("attendee_emails") == ["attendee", "email"]
    assert words("appsStatus") == ["app", "status"]
    assert words("PID.3") == ["pid", "3"]
    assert words("family-name") == ["last", "name"]


def test_calcom_suggestions_by_name_and_type() -> None:
    definition, payload = _calcom()
    found = suggest(definition, payload, mapped=set())
    best = {point: items[0] for point, items in found.items()}
    assert best["created_at"].path == "$.createdAt"
    assert best["created_at"].value == "2023-05-24T09:30:00.538000Z"
    assert best["start_time"].path == "$.payload.startTime"
    assert best["attendee_emails"].path == "$.payload.attendees[*].email"
    assert best["attendee_emails"].value == ["jane.testpatient@example.com"]
    assert best["length_minutes"].path == "$.payload.length"
    assert best["booking_id"].path == "$.payload.bookingId" and best["booking_id"].value == 91
    assert "$.payload.responses.location.value" in [s.path for s in found["location_response"]]
    # Type decides: "usd" is no number, so currency_as_number gets no suggestion.
    assert "currency_as_number" not in found
    assert all(len(items) <= 3 for items in found.values())


def test_mapped_points_get_none_and_constraints_apply() -> None:
    definition, payload = _calcom()
    found = suggest(definition, payload, mapped={"created_at", "start_time"})
    assert "created_at" not in found and "start_time" not in found
    limited = definition.model_copy(
        update={
            "data_point_definitions": [
                definition.data_point_definitions[5].model_copy(
                    update={"range": ValueRange(min=0, max=30)}
                )
            ]
        }
    )
    assert suggest(limited, payload, mapped=set()) == {}  # 60 is out of range


def test_email_data_point_finds_typeform_email_answer() -> None:
    payload = json.loads(sample_payload("typeform-form-response"))
    definition = CareFlowDefinition(
        id="survey",
        title="Survey",
        data_point_definitions=[{"id": "email", "value_type": "string"}],
    )
    [first, *_] = suggest(definition, payload, mapped=set())["email"]
    assert first.value == "sample.respondent@example.com"
    assert "[?(@." in first.path  # the filter form, stable if answers are reordered


def test_work_is_bounded_whatever_the_definition_and_payload(monkeypatch: Any) -> None:
    """Break-it review: tree and suggestions on a large payload stalled a page for minutes; the
    paths scored and tried per call are capped (counted here, not timed)."""
    from careflow.mapping import suggest as module

    tried = [0]
    scored = [0]
    real_try, real_score = module._mapped_value, module._score

    def counting_try(*args: Any) -> Any:
        tried[0] += 1
        return real_try(*args)

    def counting_score(*args: Any) -> float:
        scored[0] += 1
        return real_score(*args)

    monkeypatch.setattr(module, "_mapped_value", counting_try)
    monkeypatch.setattr(module, "_score", counting_score)
    monkeypatch.setattr(module, "MAX_SCORED", 3000)
    monkeypatch.setattr(module, "MAX_TRIALS", 40)
    payload = {"a": [{f"value{i}": f"v{i}", "name": "x"} for i in range(4000)]}
    points = [{"id": f"value_{i}", "value_type": "string"} for i in range(100)]
    definition = CareFlowDefinition(
        id="big", title="Big", published=True, data_point_definitions=points
    )
    suggest(definition, payload, mapped=set())
    assert 0 < scored[0] <= 3000
    assert 0 < tried[0] <= 40
