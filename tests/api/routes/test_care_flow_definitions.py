"""``/v1/care-flow-definitions``: created once, replaced by id, data point ranges checked."""

from __future__ import annotations

from tests.conftest import Api, RunningWorker
from tests.factories import FHIR_POINTS, JSON, add_webhook, configure_fhir_webhook, post_sample

POINTS = [{"id": "age", "value_type": "number"}]


async def test_create_once_then_replace_by_id(api: Api) -> None:
    body = {"id": "intake", "title": "Intake", "data_point_definitions": POINTS}
    assert (await api.admin("POST", "/v1/care-flow-definitions", json=body)).status_code == 201
    again = await api.admin("POST", "/v1/care-flow-definitions", json=body)
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "care_flow_definition_exists"
    replaced = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={"title": "Intake v2", "published": True, "data_point_definitions": []},
    )
    assert replaced.status_code == 200
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    assert (shown["title"], shown["published"], shown["data_point_definitions"]) == (
        "Intake v2",
        True,
        [],
    )
    unknown = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/nope",
        json={"title": "t", "published": False, "data_point_definitions": []},
    )
    assert unknown.status_code == 404


async def test_non_finite_ranges_are_422(api: Api) -> None:
    nan = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        content=b'{"id": "n", "title": "t", "data_point_definitions": '
        b'[{"id": "x", "value_type": "number", "range": {"min": NaN, "max": Infinity}}]}',
        headers=JSON,
    )
    assert nan.status_code == 422


async def test_a_definition_change_that_breaks_enabled_webhooks_is_409_unless_forced(
    api: Api, worker: RunningWorker
) -> None:
    """Issue 15 finding 6: the enable gate holds for definition edits and unpublishing too."""
    first = await configure_fhir_webhook(api)
    second = await add_webhook(
        api,
        name="second feed",
        care_flow_definition_id="intake",
        data_point_mappings=first["data_point_mappings"],
        patient_identifier=first["patient_identifier"],
    )
    idle = await add_webhook(
        api, enable=False, name="not enabled", care_flow_definition_id="intake"
    )
    await worker.stop()
    accepted = await post_sample(api, first["id"])  # accepted before the change
    assert accepted.status_code == 202

    insurance = {"id": "insurance", "value_type": "string"}
    changed = {"title": "Patient intake", "published": True}
    added = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={**changed, "data_point_definitions": [*FHIR_POINTS, insurance]},
    )
    assert added.status_code == 409, added.text
    named = {
        (e["webhook_id"], e["code"], e.get("data_point_definition_id"))
        for e in added.json()["errors"]
    }
    assert named == {
        (first["id"], "missing_data_point_mapping", "insurance"),
        (second["id"], "missing_data_point_mapping", "insurance"),
    }
    messages = " ".join(e["message"] for e in added.json()["errors"])
    assert "FHIR patient feed" in messages and "second feed" in messages
    unpublished = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={**changed, "published": False, "data_point_definitions": FHIR_POINTS},
    )
    assert unpublished.status_code == 409
    assert {(e["webhook_id"], e["code"]) for e in unpublished.json()["errors"]} == {
        (first["id"], "care_flow_definition_unpublished"),
        (second["id"], "care_flow_definition_unpublished"),
    }
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    assert shown["published"] and len(shown["data_point_definitions"]) == len(FHIR_POINTS)
    # A harmless change (an optional point) needs no force.
    optional = {**insurance, "optional": True}
    harmless = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={**changed, "data_point_definitions": [*FHIR_POINTS, optional]},
    )
    assert harmless.status_code == 200 and harmless.json()["disabled_webhooks"] == []

    forced = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake?force=true",
        json={**changed, "data_point_definitions": [*FHIR_POINTS, insurance]},
    )
    assert forced.status_code == 200, forced.text
    disabled = forced.json()["disabled_webhooks"]
    assert sorted(d["webhook_id"] for d in disabled) == sorted([first["id"], second["id"]])
    assert {e["data_point_definition_id"] for d in disabled for e in d["errors"]} == {"insurance"}
    for hook in (first, second, idle):
        assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()["enabled"] is False
    refused = await post_sample(api, first["id"])
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "webhook_disabled"
    # The request accepted before the change still runs to its end, against the new definition.
    await worker.start()
    done = await api.wait_status(accepted.json()["request_id"], {"REJECTED", "FAILED", "SUCCESS"})
    assert done["status"] == "REJECTED"
    assert [e["code"] for e in done["errors"]] == ["missing_required_data_point"]
