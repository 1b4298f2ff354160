"""The test link: test requests, kept payloads, preview, and the enable gate (issue 6)."""

from __future__ import annotations

import json

from persistence.store import Store
from tests.conftest import Api, RunningWorker, configure_fhir_webhook, sample_payload

JSON = {"Content-Type": "application/json"}


async def test_test_requests_verdicts_payloads_and_preview(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    good = await api.http.post(
        f"/hooks/{hook['id']}/test", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert good.status_code == 200, good.text
    answer = good.json()
    assert answer["status"] == "TEST"
    assert answer["verdict"] == "SCHEDULED"  # the verdict ignores `enabled`
    assert answer["webhook_enabled"] is False
    assert answer["errors"] == []
    assert answer["data_points"]["mrn"] == "24680"
    assert answer["patient_identifier"] == {
        "system": "urn:oid:1.2.36.146.595.217.0.1",
        "value": "24680",
    }

    bad_payload = json.loads(sample_payload("fhir-r4-patient-example"))
    del bad_payload["contact"]
    bad = (await api.http.post(f"/hooks/{hook['id']}/test", json=bad_payload)).json()
    assert bad["verdict"] == "REJECTED"
    assert [(e["code"], e["data_point_definition_id"]) for e in bad["errors"]] == [
        ("missing_required_data_point", "contact_family")
    ]
    garbage = await api.http.post(f"/hooks/{hook['id']}/test", content=b"{", headers=JSON)
    assert garbage.status_code == 200
    assert garbage.json()["verdict"] == "REJECTED"
    assert garbage.json()["errors"][0]["code"] == "invalid_json"

    for request_id in (answer["request_id"], bad["request_id"], garbage.json()["request_id"]):
        detail = await api.wait_status(request_id, {"TEST"})
        assert detail["is_test"] is True
    assert store.patients.count_patients() == 0 and store.patients.count_care_flows() == 0

    kept = (await api.admin("GET", f"/v1/webhooks/{hook['id']}/test-payloads")).json()["items"]
    assert [k["request_id"] for k in kept] == [
        garbage.json()["request_id"],
        bad["request_id"],
        answer["request_id"],
    ]
    assert [k["verdict"] for k in kept] == ["REJECTED", "REJECTED", "SCHEDULED"]
    assert kept[2]["payload"]["resourceType"] == "Patient"

    # Test requests are left out of the request list unless asked for.
    real = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}")).json()["items"]
    assert real == []
    tests = (await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}&is_test=true")).json()
    assert len(tests["items"]) == 3

    # Preview a proposed mapping on the newest good payload, saving nothing.
    proposal = {
        "request_id": answer["request_id"],
        "data_point_mappings": [
            {"data_point_definition_id": "mrn", "path": "$.id"},
            {"data_point_definition_id": "deceased", "path": "$.active"},
            {"data_point_definition_id": "contact_family", "path": "$.name[0].family"},
        ],
    }
    preview = await api.admin("POST", f"/v1/webhooks/{hook['id']}/preview", json=proposal)
    assert preview.status_code == 200, preview.text
    assert preview.json()["data_points"] == {
        "mrn": "example",
        "deceased": True,
        "contact_family": "Testperson",
    }
    assert preview.json()["verdict"] == "SCHEDULED"
    unchanged = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert unchanged["data_point_mappings"] == hook["data_point_mappings"]
    broken = await api.admin(
        "POST",
        f"/v1/webhooks/{hook['id']}/preview",
        json={"data_point_mappings": [{"data_point_definition_id": "mrn", "path": "$.[[["}]},
    )
    assert broken.json()["errors"][0]["code"] == "invalid_path"


async def test_test_ids_never_collide_with_real_deliveries(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    headers = {**JSON, "webhook-id": "same-delivery"}
    test = await api.http.post(
        f"/hooks/{hook['id']}/test",
        content=sample_payload("fhir-r4-patient-example"),
        headers=headers,
    )
    real = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=headers
    )
    assert test.status_code == 200 and real.status_code == 202
    assert test.json()["request_id"] != real.json()["request_id"]


async def test_only_twenty_test_payloads_are_kept(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    for i in range(23):
        answer = await api.http.post(f"/hooks/{hook['id']}/test", json={"n": i})
        assert answer.status_code == 200
    kept = (await api.admin("GET", f"/v1/webhooks/{hook['id']}/test-payloads")).json()["items"]
    assert [k["payload"]["n"] for k in kept] == list(range(22, 2, -1))


async def test_editing_an_enabled_webhook_into_incomplete_is_refused(api: Api) -> None:
    hook = await configure_fhir_webhook(api)
    answer = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"data_point_mappings": [{"data_point_definition_id": "mrn", "path": "$.id"}]},
    )
    assert answer.status_code == 409
    codes = sorted(e["data_point_definition_id"] for e in answer.json()["errors"])
    assert codes == ["contact_family", "deceased"]
    unpublished = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={"title": "Patient intake", "published": False, "data_point_definitions": []},
    )
    assert unpublished.status_code == 200
    disabled = await api.admin("POST", f"/v1/webhooks/{hook['id']}/disable")
    assert disabled.json()["enabled"] is False
    refused = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
    assert refused.status_code == 409
    assert [e["code"] for e in refused.json()["errors"]] == [
        "care_flow_definition_unpublished",
        "unknown_data_point_definition",
        "unknown_data_point_definition",
        "unknown_data_point_definition",
    ]
