"""Issue 17, points 2–6: GET → edit → PUT/PATCH round trips, saves that name what is missing,
``status=TEST`` in the request list, and bulk retry skip reasons."""

from __future__ import annotations

from tests.conftest import Api, RunningWorker
from tests.factories import (
    configure_fhir_webhook,
    failed_request,
    post_sample,
    post_with_unknown_system,
    republish,
    save_definition,
)

POINTS = [{"id": "age", "value_type": "number"}]


async def test_definition_get_edit_put_round_trip(api: Api) -> None:
    await save_definition(api, "intake", POINTS, title="Intake", published=True)
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    edited = {**shown, "title": "Intake v2"}
    put = await api.admin("PUT", "/v1/care-flow-definitions/intake", json=edited)
    assert put.status_code == 200, put.text
    assert put.json() == {**edited, "disabled_webhooks": []}
    # A different id is refused, by name.
    moved = await api.admin(
        "PUT", "/v1/care-flow-definitions/intake", json={**edited, "id": "other"}
    )
    assert moved.status_code == 422
    assert moved.json()["errors"] == [
        {
            "code": "read_only_field",
            "message": "id is read-only: send the stored value or leave it out",
            "path": "id",
        }
    ]
    # Omitting published no longer unpublishes silently: it is required.
    partial = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={"title": "t", "data_point_definitions": POINTS},
    )
    assert partial.status_code == 422
    assert "published" in partial.json()["errors"][0]["message"]
    assert (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()["published"]
    no_points = await api.admin(
        "PUT", "/v1/care-flow-definitions/intake", json={"title": "t", "published": True}
    )
    assert no_points.status_code == 422
    assert "data_point_definitions" in no_points.json()["errors"][0]["message"]


async def test_identifier_system_and_webhook_round_trips(api: Api) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    system = (await api.admin("GET", "/v1/identifier-systems/acme-mrn")).json()
    put = await api.admin(
        "PUT", "/v1/identifier-systems/acme-mrn", json={**system, "description": "edited"}
    )
    assert put.status_code == 200, put.text
    renamed = await api.admin(
        "PUT", "/v1/identifier-systems/acme-mrn", json={**system, "name": "other"}
    )
    assert renamed.status_code == 422
    assert renamed.json()["errors"][0]["path"] == "name"
    # A PUT replaces every field: omitting the description is refused, not a silent clear.
    partial = await api.admin(
        "PUT", "/v1/identifier-systems/acme-mrn", json={"system": system["system"]}
    )
    assert partial.status_code == 422 and "description" in partial.json()["errors"][0]["message"]

    shown = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    patched = await api.admin(
        "PATCH", f"/v1/webhooks/{hook['id']}", json={**shown, "name": "renamed"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed"
    for field, value in (
        ("id", "wh_other"),
        ("enabled", True),
        ("created_at", "2020-01-01T00:00:00Z"),
    ):
        refused = await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json={field: value})
        assert refused.status_code == 422, field
        assert refused.json()["errors"][0] == {
            "code": "read_only_field",
            "message": f"{field} is read-only: send the stored value or leave it out",
            "path": field,
        }


async def test_webhook_with_secret_round_trips_and_keeps_it(api: Api) -> None:
    hook = await configure_fhir_webhook(
        api, enable=False, signature={"scheme": "api-key", "secret": "s3cret", "header": "X-Key"}
    )
    shown = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert shown["signature"]["has_secret"] is True
    patched = await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json=shown)
    assert patched.status_code == 200, patched.text
    assert patched.json()["signature"]["has_secret"] is True
    lying = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"signature": {**shown["signature"], "has_secret": False}},
    )
    assert lying.status_code == 422
    assert lying.json()["errors"][0]["path"] == "signature.has_secret"


async def test_webhook_for_unknown_definition_is_refused_at_save(api: Api) -> None:
    created = await api.admin(
        "POST", "/v1/webhooks", json={"name": "x", "care_flow_definition_id": "nope"}
    )
    assert created.status_code == 422
    error = created.json()["errors"][0]
    assert error["code"] == "care_flow_definition_not_found" and "nope" in error["message"]
    hook = await configure_fhir_webhook(api, enable=False)
    moved = await api.admin(
        "PATCH", f"/v1/webhooks/{hook['id']}", json={"care_flow_definition_id": "nope"}
    )
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["code"] == "care_flow_definition_not_found"


async def test_unknown_identifier_system_is_named(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    rejected = await post_with_unknown_system(api, hook["id"])
    error = rejected.json()["errors"][0]
    assert error["code"] == "unknown_identifier_system"
    assert "'https://other.example/mrn'" in error["message"]
    await api.admin("POST", f"/v1/webhooks/{hook['id']}/disable")
    patched = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={
            "patient_identifier": {
                "system": "urn:x:unknown",
                "system_path": None,
                "value_path": "$.id",
            }
        },
    )
    assert patched.status_code == 200, patched.text
    literal = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
    assert literal.status_code == 409
    assert "'urn:x:unknown'" in literal.json()["errors"][0]["message"]


async def test_patients_found_by_system_name_or_uri(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    request_id = (await post_sample(api, hook["id"])).json()["request_id"]
    done = await api.wait_status(request_id, {"SUCCESS"})
    by_uri = await api.admin("GET", "/v1/patients?identifier=urn:oid:1.2.36.146.595.217.0.1|24680")
    by_name = await api.admin("GET", "/v1/patients?identifier=acme-mrn|24680")
    assert [p["id"] for p in by_uri.json()["items"]] == [done["patient_id"]]
    assert by_name.json() == by_uri.json()
    unknown = await api.admin("GET", "/v1/patients?identifier=no-such-system|24680")
    assert unknown.status_code == 422
    error = unknown.json()["errors"][0]
    assert error["code"] == "unknown_identifier_system" and "'no-such-system'" in error["message"]


async def test_status_test_lists_test_requests(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    test = await post_sample(api, hook["id"], test=True)
    assert test.status_code == 200, test.text
    request_id = test.json()["request_id"]
    await api.wait_status(request_id, {"TEST"})
    by_status = await api.admin("GET", f"/v1/requests?status=TEST&webhook_id={hook['id']}")
    by_flag = await api.admin("GET", f"/v1/requests?is_test=true&webhook_id={hook['id']}")
    contradictory = await api.admin("GET", "/v1/requests?status=TEST&is_test=false")
    assert contradictory.status_code == 422
    assert contradictory.json()["errors"][0]["code"] == "contradictory_filters"
    assert [r["request_id"] for r in by_status.json()["items"]] == [request_id]
    assert [r["request_id"] for r in by_flag.json()["items"]] == [request_id]
    assert by_status.json()["items"][0]["status"] == "TEST"


async def test_bulk_retry_counts_skips_by_reason(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    request_id = await failed_request(api, worker, hook["id"])
    await republish(api, hook["id"])
    first = await api.admin(
        "POST", "/v1/requests/retry", json={"webhook_id": hook["id"], "status": "FAILED"}
    )
    assert first.json() == {"reset": 1, "skipped": 0, "skipped_by_reason": {}}
    await api.wait_status(request_id, {"SUCCESS"})
    # The superseded FAILED run still matches status=FAILED in visibility; its request succeeded.
    again = await api.admin(
        "POST", "/v1/requests/retry", json={"webhook_id": hook["id"], "status": "FAILED"}
    )
    assert again.json() == {"reset": 0, "skipped": 1, "skipped_by_reason": {"succeeded": 1}}
    single = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert single.status_code == 409
    assert single.json()["errors"][0]["message"].startswith("the request succeeded")
