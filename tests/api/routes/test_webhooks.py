"""``/v1/webhooks``: created disabled, merge-patched, enabled through the gate, disabled and
soft-deleted; their kept test payloads and the mapping preview."""

from __future__ import annotations

from tests.conftest import Api, RunningWorker
from tests.factories import add_webhook, configure_fhir_webhook, post_sample, save_definition


async def test_enable_gate_lists_every_problem(api: Api) -> None:
    await configure_fhir_webhook(api, enable=False)
    hook = await add_webhook(
        api,
        enable=False,
        name="incomplete",
        care_flow_definition_id="intake",
        data_point_mappings=[{"data_point_definition_id": "mrn", "path": "$.id"}],
        patient_identifier={"system": "https://unknown.example/ids", "value_path": "$.id"},
    )
    answer = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
    assert answer.status_code == 409
    problems = sorted(
        (e["code"], e.get("data_point_definition_id")) for e in answer.json()["errors"]
    )
    assert problems == [
        ("missing_data_point_mapping", "contact_family"),
        ("missing_data_point_mapping", "deceased"),
        ("unknown_identifier_system", None),
    ]
    bad_path = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"data_point_mappings": [{"data_point_definition_id": "mrn", "path": "$.[[["}]},
    )
    assert bad_path.status_code == 422
    assert bad_path.json()["errors"][0]["code"] == "invalid_path"


async def test_odd_webhook_fields_are_422(api: Api) -> None:
    long_id = await api.admin(
        "POST", "/v1/webhooks", json={"name": "x", "care_flow_definition_id": "c" * 5000}
    )
    assert long_id.status_code == 422
    region = await api.admin(
        "POST",
        "/v1/webhooks",
        json={"name": "x", "care_flow_definition_id": "open", "default_region": "ZZ"},
    )
    assert region.status_code == 422
    regex = await api.admin(
        "POST",
        "/v1/webhooks",
        json={
            "name": "x",
            "care_flow_definition_id": "open",
            "data_point_mappings": [
                {"data_point_definition_id": "anything", "path": '$.a[?(@ =~ "^(a+)+$")]'}
            ],
        },
    )
    assert regex.status_code == 422
    assert regex.json()["errors"][0]["code"] == "invalid_path"


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
    disabled = await api.admin("POST", f"/v1/webhooks/{hook['id']}/disable")
    assert disabled.json()["enabled"] is False
    await save_definition(api, "intake", [], title="Patient intake", published=False, replace=True)
    refused = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
    assert refused.status_code == 409
    assert [e["code"] for e in refused.json()["errors"]] == [
        "care_flow_definition_unpublished",
        "unknown_data_point_definition",
        "unknown_data_point_definition",
        "unknown_data_point_definition",
    ]


async def test_disable_reaches_ingest_at_once(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    assert (await api.admin("POST", f"/v1/webhooks/{hook['id']}/disable")).status_code == 200
    # No wait: in the same process the write refreshes the cache before it answers.
    answer = await post_sample(api, hook["id"])
    assert answer.status_code == 403


async def test_accepted_requests_finish_after_the_webhook_is_deleted(
    api: Api, worker: RunningWorker
) -> None:
    await worker.stop()
    hook = await configure_fhir_webhook(api)
    answer = await post_sample(api, hook["id"])
    assert answer.status_code == 202
    assert (await api.admin("DELETE", f"/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).status_code == 404
    listed = (await api.admin("GET", "/v1/webhooks")).json()["items"]
    assert hook["id"] not in [h["id"] for h in listed]
    gone = await post_sample(api, hook["id"])
    assert gone.status_code == 404
    await worker.start()
    done = await api.wait_status(answer.json()["request_id"], {"SUCCESS", "REJECTED", "FAILED"})
    assert done["status"] == "SUCCESS"


async def test_only_twenty_test_payloads_are_kept(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    for i in range(23):
        answer = await api.http.post(f"/hooks/{hook['id']}/test", json={"n": i})
        assert answer.status_code == 200
    kept = (await api.admin("GET", f"/v1/webhooks/{hook['id']}/test-payloads")).json()["items"]
    assert [k["payload"]["n"] for k in kept] == list(range(22, 2, -1))
    unknown = await api.admin("GET", "/v1/webhooks/wh_nope/test-payloads")
    assert unknown.status_code == 404


async def test_preview_evaluates_a_proposed_mapping_saving_nothing(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    nothing_kept = await api.admin("POST", f"/v1/webhooks/{hook['id']}/preview", json={})
    assert nothing_kept.status_code == 404
    assert nothing_kept.json()["errors"][0]["code"] == "test_payload_not_found"
    kept = (await post_sample(api, hook["id"], test=True)).json()
    await api.http.post(f"/hooks/{hook['id']}/test", json={"other": "payload"})
    proposal = {
        "request_id": kept["request_id"],
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


async def test_a_no_op_patch_keeps_updated_at(api: Api) -> None:
    hook = await configure_fhir_webhook(api)
    before = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    for patch in ({}, {"name": before["name"]}):
        same = await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json=patch)
        assert same.status_code == 200, same.text
        assert same.json()["updated_at"] == before["updated_at"]
    renamed = await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json={"name": "Renamed"})
    assert renamed.json()["updated_at"] > before["updated_at"]
