"""Request validation and the enable gate, on configuration snapshots built by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    Identifier,
    IdentifierSystem,
    PatientIdentifierMapping,
    RequestStatus,
    Webhook,
    WebhookFields,
)
from careflow.snapshot import ConfigSnapshot
from careflow.validation import (
    MAX_DATA_POINTS_BYTES,
    enable_problems,
    validate,
    without_enabled_check,
)

SYSTEM = "https://example-hospital.org/mrn"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def definition(*, published: bool = True) -> CareFlowDefinition:
    return CareFlowDefinition(
        id="intake",
        title="Intake",
        published=published,
        data_point_definitions=[
            DataPointDefinition(id="age", value_type="number"),
            DataPointDefinition(id="note", value_type="string", optional=True),
        ],
    )


def webhook(**overrides: Any) -> Webhook:
    fields: dict[str, Any] = {
        "id": "wh_1",
        "name": "Hook",
        "care_flow_definition_id": "intake",
        "enabled": True,
        "data_point_mappings": [
            DataPointMapping(data_point_definition_id="age", path="$.age"),
            DataPointMapping(data_point_definition_id="note", path="$.note"),
        ],
        "patient_identifier": PatientIdentifierMapping(system_path="$.sys", value_path="$.mrn"),
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Webhook(**{**fields, **overrides})


def snapshot(
    *hooks: Webhook,
    definitions: tuple[CareFlowDefinition, ...] | None = None,
    systems: tuple[str, ...] = (SYSTEM,),
) -> ConfigSnapshot:
    return ConfigSnapshot(
        revision=7,
        webhooks={h.id: h for h in hooks or (webhook(),)},
        definitions={d.id: d for d in ((definition(),) if definitions is None else definitions)},
        identifier_systems={
            f"s{i}": IdentifierSystem(name=f"s{i}", system=uri) for i, uri in enumerate(systems)
        },
    )


BODY = {"age": "42", "note": "hello", "sys": SYSTEM, "mrn": 1234}


def codes(result: Any) -> list[str]:
    return [e.code for e in result]


# --- validate --------------------------------------------------------------------------------


def test_a_valid_body_is_scheduled_with_everything_mapped() -> None:
    result = validate(snapshot(), "wh_1", BODY)
    assert result.verdict == RequestStatus.SCHEDULED
    assert result.errors == []
    assert result.care_flow_definition_id == "intake"
    assert result.data_points == {"age": 42, "note": "hello"}
    assert result.patient_identifier == Identifier(system=SYSTEM, value="1234")
    assert result.webhook_enabled is True


def test_an_unknown_webhook_is_rejected_with_nothing_else() -> None:
    result = validate(snapshot(), "wh_other", BODY)
    assert result.verdict == RequestStatus.REJECTED
    assert codes(result.errors) == ["webhook_not_found"]
    assert result.care_flow_definition_id is None
    assert result.data_points == {}


def test_a_missing_definition_is_rejected_naming_the_webhooks_definition() -> None:
    result = validate(snapshot(definitions=()), "wh_1", BODY)
    assert result.verdict == RequestStatus.REJECTED
    assert codes(result.errors) == ["care_flow_definition_not_found"]
    assert result.care_flow_definition_id == "intake"
    assert result.webhook_enabled is True


def test_a_disabled_webhook_is_rejected_but_still_mapped() -> None:
    result = validate(snapshot(webhook(enabled=False)), "wh_1", BODY)
    assert result.verdict == RequestStatus.REJECTED
    assert codes(result.errors) == ["webhook_disabled"]
    assert result.webhook_enabled is False
    assert result.data_points == {"age": 42, "note": "hello"}


def test_a_deleted_webhook_in_the_snapshot_is_disabled() -> None:
    deleted = webhook(enabled=False, deleted=True)
    result = validate(snapshot(deleted), "wh_1", BODY)
    assert codes(result.errors) == ["webhook_disabled"]
    assert result.webhook_enabled is False


def test_webhook_disabled_comes_first_then_every_mapping_problem() -> None:
    body = {"age": "old", "sys": SYSTEM}
    result = validate(snapshot(webhook(enabled=False)), "wh_1", body)
    assert codes(result.errors) == [
        "webhook_disabled",
        "invalid_number",
        "missing_patient_identifier",
    ]
    assert result.data_points == {}


def test_an_unconfigured_identifier_system_is_rejected_at_the_system_path() -> None:
    result = validate(snapshot(systems=("urn:other",)), "wh_1", BODY)
    assert result.verdict == RequestStatus.REJECTED
    assert codes(result.errors) == ["unknown_identifier_system"]
    assert result.errors[0].path == "$.sys"
    assert result.patient_identifier == Identifier(system=SYSTEM, value="1234")


def test_a_body_patient_identifier_with_an_unknown_system_has_no_path() -> None:
    hook = webhook(patient_identifier=None)
    body = {"age": 1, "patient_identifier": {"system": "urn:unknown", "value": "7"}}
    result = validate(snapshot(hook), "wh_1", body)
    assert codes(result.errors) == ["unknown_identifier_system"]
    assert result.errors[0].path is None


def test_data_points_up_to_the_size_limit_pass_and_one_byte_more_is_refused() -> None:
    def body_of_size(size: int) -> dict[str, Any]:
        overhead = len(json.dumps({"age": 1, "note": ""}, separators=(",", ":")))
        return {"age": 1, "note": "x" * (size - overhead), "sys": SYSTEM, "mrn": "1"}

    at_limit = validate(snapshot(), "wh_1", body_of_size(MAX_DATA_POINTS_BYTES))
    assert at_limit.verdict == RequestStatus.SCHEDULED
    over = validate(snapshot(), "wh_1", body_of_size(MAX_DATA_POINTS_BYTES + 1))
    assert over.verdict == RequestStatus.REJECTED
    assert codes(over.errors) == ["data_points_too_large"]
    assert over.data_points == {}


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    # "é" is one character and two bytes of UTF-8: half the limit in characters is too large.
    body = {"age": 1, "note": "é" * (MAX_DATA_POINTS_BYTES // 2), "sys": SYSTEM, "mrn": "1"}
    assert codes(validate(snapshot(), "wh_1", body).errors) == ["data_points_too_large"]


# --- without_enabled_check --------------------------------------------------------------------


def test_without_enabled_check_gives_the_verdict_of_an_enabled_webhook() -> None:
    disabled = validate(snapshot(webhook(enabled=False)), "wh_1", BODY)
    result = without_enabled_check(disabled)
    assert result.verdict == RequestStatus.SCHEDULED
    assert result.errors == []
    assert result.data_points == disabled.data_points
    assert disabled.verdict == RequestStatus.REJECTED  # the input is left as it was


def test_without_enabled_check_keeps_other_problems() -> None:
    disabled = validate(snapshot(webhook(enabled=False)), "wh_1", {"age": "old"})
    result = without_enabled_check(disabled)
    assert result.verdict == RequestStatus.REJECTED
    assert "webhook_disabled" not in codes(result.errors)
    assert codes(result.errors) == codes(disabled.errors)[1:]


def test_without_enabled_check_returns_a_result_without_the_error_unchanged() -> None:
    rejected = validate(snapshot(), "wh_other", BODY)
    assert without_enabled_check(rejected) is rejected


# --- enable_problems --------------------------------------------------------------------------


def fields(**overrides: Any) -> WebhookFields:
    base = webhook().model_dump(include=set(WebhookFields.model_fields))
    return WebhookFields.model_validate({**base, **overrides})


def test_a_complete_webhook_can_be_enabled() -> None:
    assert enable_problems(fields(), snapshot()) == []


def test_optional_data_points_need_no_mapping() -> None:
    only_required = [{"data_point_definition_id": "age", "path": "$.age"}]
    assert enable_problems(fields(data_point_mappings=only_required), snapshot()) == []


def test_every_missing_required_mapping_and_unknown_mapping_is_reported() -> None:
    mappings = [
        {"data_point_definition_id": "note", "path": "$.note"},
        {"data_point_definition_id": "ghost", "path": "$.ghost"},
    ]
    problems = enable_problems(fields(data_point_mappings=mappings), snapshot())
    assert [(p.code, p.data_point_definition_id, p.path) for p in problems] == [
        ("missing_data_point_mapping", "age", None),
        ("unknown_data_point_definition", "ghost", "$.ghost"),
    ]


def test_an_unpublished_definition_cannot_be_enabled() -> None:
    problems = enable_problems(fields(), snapshot(definitions=(definition(published=False),)))
    assert codes(problems) == ["care_flow_definition_unpublished"]


def test_a_missing_definition_is_reported_once_without_mapping_checks() -> None:
    problems = enable_problems(fields(care_flow_definition_id="gone"), snapshot())
    assert codes(problems) == ["care_flow_definition_not_found"]


def test_unparsable_paths_come_first() -> None:
    mappings = [{"data_point_definition_id": "age", "path": "$.["}]
    problems = enable_problems(fields(data_point_mappings=mappings), snapshot())
    assert codes(problems) == ["invalid_path"]
    assert problems[0].data_point_definition_id == "age"


@pytest.mark.parametrize(
    ("system", "expected"),
    [(SYSTEM, []), ("urn:not-configured", ["unknown_identifier_system"])],
)
def test_a_literal_identifier_system_must_be_configured(system: str, expected: list[str]) -> None:
    identifier = {"system": system, "value_path": "$.mrn"}
    assert codes(enable_problems(fields(patient_identifier=identifier), snapshot())) == expected


def test_a_system_path_is_not_checked_against_configured_systems() -> None:
    identifier = {"system_path": "$.sys", "value_path": "$.mrn"}
    no_systems = snapshot(systems=())
    assert enable_problems(fields(patient_identifier=identifier), no_systems) == []


def test_unknown_identifier_system_is_named_only_when_it_is_configuration() -> None:
    """Issue 17: the message names the system looked for when the webhook configures it; a
    system read from the payload is a payload value and never quoted (contract §4: messages
    never quote payload values; the PHI review found ``urn:…:<name>`` and URLs holding a
    patient's name quoted into the answer and the request detail)."""
    from careflow.validation import _NOT_SHOWN, _named

    from_payload = webhook()  # system_path: the system comes from the payload
    for phi in (
        # Namespaces too (break-it review PHI): a URL or urn: can carry the patient itself.
        "https://other.example/mrn",
        "urn:oid:1.2.3",
        "https://portal.example/patients/Zelphinia-Quartermaine",
        "urn:acme:mrn:77001134",
        "Doe:Jane",
        "mailto:jane.doe@example.com",
        "ssn:123-45-6789",
        "tel:+15551234567",
        "urn:jane@doe.example",
        "https://jane@doe.example/x",
        "Jane Doe 1980-01-01",
    ):
        assert _named(phi, from_payload) == _NOT_SHOWN, phi
    assert len(_named("urn:" + "x" * 5000, from_payload)) < 210
    configured = webhook(
        patient_identifier={"system": "tel:configured-namespace", "value_path": "$.mrn"}
    )
    assert _named("tel:configured-namespace", configured) == "'tel:configured-namespace'"


def test_unknown_payload_system_value_is_not_in_the_message() -> None:
    for phi in ("mailto:jane.doe@example.com", "ssn:123-45-6789", "Doe:Jane"):
        result = validate(snapshot(), "wh_1", {**BODY, "sys": phi})
        assert codes(result.errors) == ["unknown_identifier_system"]
        assert phi not in result.errors[0].message
        assert "not shown" in result.errors[0].message


# --- conditions (contract §5b) ------------------------------------------------------------------

ONLY_INTAKE = {"rules": [{"path": "$.event", "op": "equals", "value": "intake"}]}


def test_conditions_not_met_is_ignored_before_required_data_points() -> None:
    hook = webhook(conditions=ONLY_INTAKE)
    # No age (required) and no identifier: still IGNORED, not REJECTED.
    result = validate(snapshot(hook), "wh_1", {"event": "follow_up"})
    assert result.verdict == RequestStatus.IGNORED
    assert result.errors == [] and result.data_points == {}
    [reason] = result.reasons
    assert reason.code == "conditions_not_met"
    assert [(r.path, r.op, r.outcome) for r in reason.rules or []] == [("$.event", "equals", False)]


def test_conditions_met_go_on_to_the_mapping() -> None:
    hook = webhook(conditions=ONLY_INTAKE, skip_if_enrolled=True)
    body = {"event": "intake", "age": "41", "sys": SYSTEM, "mrn": "7"}
    result = validate(snapshot(hook), "wh_1", body)
    assert result.verdict == RequestStatus.SCHEDULED
    assert result.conditions is not None and result.conditions.met
    assert result.skip_if_enrolled is True
    missing = validate(snapshot(hook), "wh_1", {"event": "intake"})
    assert missing.verdict == RequestStatus.REJECTED


def test_a_disabled_webhook_rejects_and_the_test_view_ignores() -> None:
    hook = webhook(conditions=ONLY_INTAKE, enabled=False)
    result = validate(snapshot(hook), "wh_1", {"event": "other"})
    assert result.verdict == RequestStatus.REJECTED
    assert [e.code for e in result.errors] == ["webhook_disabled"]
    assert without_enabled_check(result).verdict == RequestStatus.IGNORED


def test_enable_gate_checks_conditions_and_debounce() -> None:
    hook = webhook(
        conditions={"rules": [{"path": "$.n", "op": "gt", "value": "x", "value_type": "number"}]},
        debounce={"key_path": "$.[", "seconds": 30},
    )
    codes = {p.code for p in enable_problems(hook, snapshot(hook))}
    assert {"invalid_condition", "invalid_path"} <= codes
