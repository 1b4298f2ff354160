"""Edge cases found by a break-it review: each once answered 5xx, lost or duplicated work, or
disagreed with the contract."""

from __future__ import annotations

import json

from persistence.store import Store
from tests.api.test_ingest_hardening import open_webhook
from tests.careflow.test_signatures import SECRET, standard_headers
from tests.conftest import ADMIN_TOKEN, Api, RunningWorker, configure_fhir_webhook, sample_payload

JSON = {"Content-Type": "application/json"}


async def test_repeated_delivery_id_header_cannot_replay_a_signed_delivery(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await open_webhook(api, signature={"scheme": "standard-webhooks", "secret": SECRET})
    body = b'{"a": 1}'
    signed = standard_headers(body, msg_id="msg_sig1")
    first = await api.http.post(f"/hooks/{hook_id}", content=body, headers={**JSON, **signed})
    assert first.status_code == 202
    await api.wait_status(first.json()["request_id"], {"SUCCESS"})
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"webhook-id", b"replay-2"),
        *[(k.lower().encode(), v.encode()) for k, v in signed.items()],
    ]
    replay = await api.http.post(f"/hooks/{hook_id}", content=body, headers=raw_headers)
    assert replay.status_code == 400, replay.text
    assert replay.json()["errors"][0]["code"] == "duplicate_header"
    assert store.patients.count_care_flows() == 1


async def test_data_points_too_large_for_temporal_are_rejected_at_once(
    api: Api, worker: RunningWorker
) -> None:
    hook_id = await open_webhook(api)
    # 1e15 re-serialises as 1000000000000000.0: a 0.5 MB body maps to ~2 MB of data points.
    body = ('{"a": [' + ",".join(["1e15"] * 100_000) + "]}").encode()
    assert len(body) < 1_048_576
    answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    assert [e["code"] for e in answer.json()["errors"]] == ["data_points_too_large"]
    test = await api.http.post(f"/hooks/{hook_id}/test", content=body, headers=JSON)
    assert test.json()["verdict"] == "REJECTED"
    detail = await api.wait_status(test.json()["request_id"], {"TEST", "FAILED"}, timeout=30)
    assert detail["status"] == "TEST"


async def test_odd_filters_and_ids_are_4xx(api: Api) -> None:
    for query in ("webhook_id=%00", "patient_id=a%00b", "care_flow_definition_id=x%0A"):
        answer = await api.admin("GET", f"/v1/requests?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert answer.json()["errors"][0]["code"] == "invalid_filter"
    bulk = await api.admin(
        "POST", "/v1/requests/retry", json={"status": "FAILED", "webhook_id": "\0"}
    )
    assert bulk.status_code == 400
    long_id = await api.admin(
        "POST", "/v1/webhooks", json={"name": "x", "care_flow_definition_id": "c" * 5000}
    )
    assert long_id.status_code == 422
    for system in ("http://x y", "urn:a\0b", "urn:oid:1.2 ", "urn:x\n"):
        answer = await api.admin(
            "POST", "/v1/identifier-systems", json={"name": "odd", "system": system}
        )
        assert answer.status_code == 422, system
    nan = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        content=b'{"id": "n", "title": "t", "data_point_definitions": '
        b'[{"id": "x", "value_type": "number", "range": {"min": NaN, "max": Infinity}}]}',
        headers=JSON,
    )
    assert nan.status_code == 422
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


async def test_config_lists_page(api: Api) -> None:
    for i in range(3):
        await api.admin(
            "POST", "/v1/identifier-systems", json={"name": f"s{i}", "system": f"urn:s:{i}"}
        )
    first = (await api.admin("GET", "/v1/identifier-systems?limit=2")).json()
    assert len(first["items"]) == 2 and first["next_page_token"]
    rest = (
        await api.admin(
            "GET", f"/v1/identifier-systems?limit=2&page_token={first['next_page_token']}"
        )
    ).json()
    assert [s["name"] for s in rest["items"]] == ["s2"] and rest["next_page_token"] is None
    assert (await api.admin("GET", "/v1/identifier-systems?limit=0")).status_code == 422
    assert (await api.admin("GET", "/v1/identifier-systems?page_token=zzz")).status_code == 400


async def test_compressed_body_is_415(api: Api, worker: RunningWorker) -> None:
    hook_id = await open_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook_id}", content=b"\x1f\x8b\x08", headers={**JSON, "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 415


async def test_disabled_webhook_with_missing_definition_is_403(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api, enable=False, care_flow_definition_id="nope")
    answer = await api.http.post(
        f"/hooks/{hook['id']}", content=sample_payload("fhir-r4-patient-example"), headers=JSON
    )
    assert answer.status_code == 403
    assert [e["code"] for e in answer.json()["errors"]] == [
        "webhook_disabled",
        "care_flow_definition_not_found",
    ]


async def test_rejected_request_detail_shows_what_was_mapped(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api)
    payload = json.loads(sample_payload("fhir-r4-patient-example"))
    del payload["deceasedBoolean"]
    answer = await api.http.post(f"/hooks/{hook['id']}", json=payload)
    assert answer.status_code == 422
    request_id = answer.json()["request_id"]
    # The handler's mapping travels in the workflow input: shown at once, validated once.
    detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    assert detail["data_points"] == {"mrn": "24680", "contact_family": "du Exemplé"}
    await api.wait_status(request_id, {"REJECTED"})
    detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
    assert detail["status"] == "REJECTED"
    assert detail["data_points"] == {"mrn": "24680", "contact_family": "du Exemplé"}
    assert detail["patient_identifier"]["value"] == "24680"


async def test_ui_forms_with_repeated_or_file_fields_are_422(api: Api) -> None:
    login = await api.http.post("/ui/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    api.http.cookies.update(login.cookies)
    page = await api.http.get("/ui/settings")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    repeated = await api.http.post(
        "/ui/care-flow-definitions",
        content=f"csrf={csrf}&id=u1&title=t&data_point_definitions=[]&data_point_definitions=[]",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 422
    as_file = await api.http.post(
        "/ui/care-flow-definitions",
        data={"csrf": csrf, "id": "u2", "title": "t"},
        files={"data_point_definitions": ("f.json", b"[]")},
    )
    assert as_file.status_code == 422
    deep = await api.http.post(
        "/ui/care-flow-definitions",
        data={"csrf": csrf, "id": "u3", "title": "t", "data_point_definitions": "[" * 100_000},
    )
    assert deep.status_code == 422
