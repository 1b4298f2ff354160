"""``careflow.mapping.tree``: every path a tree offers selects exactly the value clicked."""

from __future__ import annotations

import json
from typing import Any

from careflow.mapping import tree
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


# The break-it review's payload: people's ids, names and emails in lists of objects.
PEOPLE = {
    "participants": [
        {
            "patient": {"id": "MRN-778812"},
            "email": "jane.doe@example.com",
            "family": "Doe",
            "birthDate": "1980-02-03",
        },
        {
            "patient": {"id": "MRN-991234"},
            "email": "john.roe@example.com",
            "family": "Roe",
            "birthDate": "1975-01-01",
        },
    ],
    "contacts": [{"key": "Jane Doe", "email": "jane@doe.example"}],
}


def _values(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for child in value.values() for v in _values(child)]
    if isinstance(value, list):
        return [v for child in value for v in _values(child)]
    return [str(value)]


def test_no_offered_path_holds_a_payload_value() -> None:
    values = _values(PEOPLE)
    for node in leaves(build(PEOPLE)):
        for path in (node.path, node.all_path, node.filter_path):
            assert path is None or not any(v in path for v in values), path
    assert discriminator(PEOPLE["participants"]) is None
    assert discriminator(PEOPLE["contacts"]) is None


def test_only_constant_like_values_under_allowed_keys_discriminate() -> None:
    assert discriminator([{"id": "a"}, {"id": "b"}]) is None  # id: not an allowed key
    assert discriminator([{"key": "a"}, {"key": "b"}]) is None
    assert discriminator([{"code": "a"}, {"code": "b"}]) is None
    assert discriminator([{"patient": {"id": "p1x"}}, {"patient": {"id": "p2x"}}]) is None
    for person_like in ("Jane Doe", "jane@doe.example", "1980-02-03", "MRN-778812", "12345"):
        assert discriminator([{"type": person_like}, {"type": "visit"}]) is None, person_like
    for uri in ("Doe:Jane", "mailto:jane@example.com", "tel:+15551234567", "urn:x@y"):
        assert discriminator([{"system": uri}, {"system": "urn:oid:1.2.3"}]) is None, uri
    assert discriminator([{"system": "http://a.example/mrn"}, {"system": "urn:oid:1.2"}]) == (
        "system"
    )
    assert discriminator([{"field": {"ref": "email"}}, {"field": {"ref": "phone"}}]) == (
        "field.ref"
    )


def test_discriminator_work_is_bounded(monkeypatch: Any) -> None:
    """A list of many objects with distinct nested keys once took quadratic time (2 000 items:
    31 s); lookups are now bounded by the allowed keys times the scanned items."""
    calls = [0]
    real = tree._lookup

    def counting(item: Any, dotted: str) -> Any:
        calls[0] += 1
        return real(item, dotted)

    monkeypatch.setattr(tree, "_lookup", counting)
    for n in (500, 2000, 4000):
        calls[0] = 0
        build({"a": [{f"k{i}": {}} for i in range(n)]})
        assert calls[0] == 0  # over MAX_FILTER_ITEMS: no filter is looked for
    calls[0] = 0
    items = [{"field": {"ref": f"r{i}x", f"n{i}": {}}} for i in range(tree.MAX_FILTER_ITEMS)]
    assert discriminator(items) == "field.ref"
    assert calls[0] <= len(tree.DISCRIMINATORS) * tree.MAX_FILTER_ITEMS


def test_deep_nesting_is_cut_off() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"a": deep}
    root = build(deep)
    depth = 0
    node = root
    while node.children:
        node, depth = node.children[0], depth + 1
    assert depth == tree.MAX_DEPTH
