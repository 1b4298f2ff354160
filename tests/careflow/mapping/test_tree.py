"""``careflow.mapping.tree``: every path a tree offers selects exactly the value clicked."""

from __future__ import annotations

import json

from careflow.mapping.paths import compile_path
from careflow.mapping.tree import build, discriminator, leaves, name_step
from tests.factories import sample_payload

SAMPLES = (
    "calcom-booking-created",
    "typeform-form-response",
    "athenahealth-appointment-create",
    "fhir-r4-patient-example",
)


def _find(path: str, payload: object) -> list[object]:
    return [m.value for m in compile_path(path).find(payload)]


def test_names_needing_brackets() -> None:
    assert name_step("startTime") == ".startTime"
    assert name_step("event-data") == "['event-data']"
    assert name_step("PID.3") == "['PID.3']"
    assert name_step("it's") == "['it\\'s']"
    assert name_step("where") == "['where']"
    payload = {"event-data": {"PID.3": [{"it's": 1}]}, "where": 2}
    root = build(payload)
    paths = {n.path: n.value for n in leaves(root) if n.kind == "number"}
    assert paths == {"$['event-data']['PID.3'][0]['it\\'s']": 1, "$['where']": 2}
    for path, value in paths.items():
        assert _find(path, payload) == [value]


def test_every_offered_path_selects_its_value_in_the_samples() -> None:
    for name in SAMPLES:
        payload = json.loads(sample_payload(name))
        for node in leaves(build(payload)):
            if node.kind in ("object", "array"):
                continue
            assert _find(node.path, payload) == [node.value], (name, node.path)
            if node.filter_path:
                assert _find(node.filter_path, payload) == [node.value], node.filter_path
            if node.all_path:
                assert node.value in _find(node.all_path, payload), node.all_path


def test_filter_form_uses_a_discriminating_key() -> None:
    calcom = json.loads(sample_payload("calcom-booking-created"))
    success = next(n for n in leaves(build(calcom)) if n.path.endswith("appsStatus[0].success"))
    assert success.filter_path == "$.payload.appsStatus[?(@.type=='apple_calendar')].success"
    assert success.all_path == "$.payload.appsStatus[*].success"
    typeform = json.loads(sample_payload("typeform-form-response"))
    answers = typeform["form_response"]["answers"]
    # answers[].type and answers[].field.type repeat, field.ref is mostly absent: field.id.
    assert discriminator(answers) == "field.id"
    email = next(
        n
        for n in leaves(build(typeform))
        if n.path.startswith("$.form_response.answers[") and n.path.endswith(".email")
    )
    assert email.filter_path and "[?(@." in email.filter_path
    assert _find(email.filter_path, typeform) == [email.value]


def test_people_are_never_discriminators() -> None:
    attendees = [{"email": "a@example.com", "name": "A"}, {"email": "b@example.com", "name": "B"}]
    assert discriminator(attendees) is None
    assert discriminator([{"type": "x"}, {"type": "x"}]) is None  # not distinct
    assert discriminator([{"type": "it's"}]) is None  # would need escaping in a filter


def test_tree_is_bounded() -> None:
    root = build({"a": list(range(10_000))}, max_nodes=100)
    assert len(leaves(root)) <= 101
