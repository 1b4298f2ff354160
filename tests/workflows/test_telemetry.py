"""The worker's request telemetry: terminal statuses counted once on the worker's metrics
endpoint (with the Temporal SDK's own metrics), request ids on activity log lines, and the
FAILED alert — signed per Standard Webhooks, durable, and unable to change the outcome."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from datetime import datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from temporalio.client import WorkflowExecutionStatus

from backends.base import BackendRefusedError
from backends.builtin import BuiltinBackend
from careflow import logs
from careflow.answers import CareFlow
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, free_port, serve_api
from tests.factories import (
    MRN_SYSTEM,
    add_identifier_system,
    add_webhook,
    ehr_webhook,
    save_definition,
)
from tests.observability import (
    EHR_REQUEST,
    alert_receiver,
    assert_no_phi,
    metric_labels,
    metrics_worker,
    value,
)

backend_log = logging.getLogger("tests.backend")


class RefusingBackend(BuiltinBackend):
    """The built-in backend, refusing for good to start care flows of definition ``doomed``
    (as a real backend refuses an unpublished pathway); it logs one line per start."""

    kind = "builtin"

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        backend_log.info("starting a care flow of %s", care_flow_definition_id)
        if care_flow_definition_id == "doomed":
            raise BackendRefusedError("care_flow_definition_unpublished", "not published")
        return super().start_care_flow(
            care_flow_definition_id, patient_id, data_points, idempotency_key
        )


def alert_settings(settings: Settings, url: str) -> tuple[Settings, str]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return (
        settings.model_copy(
            update={"careflow_alert_webhook_url": url, "careflow_alert_webhook_secret": secret}
        ),
        secret,
    )


async def doomed_webhook(api: Api) -> str:
    """A webhook of definition ``doomed``, whose care flows ``RefusingBackend`` refuses."""
    await save_definition(api, "doomed", [{"id": "reason", "value_type": "string"}])
    hook = await add_webhook(
        api,
        name="doomed",
        care_flow_definition_id="doomed",
        data_point_mappings=[{"data_point_definition_id": "reason", "path": "$.reason"}],
    )
    return str(hook["id"])


async def closed_status(handle: Any, timeout: float = 10) -> WorkflowExecutionStatus | None:
    """The execution's status once it has closed. The request log may already answer FAILED
    (the worker's live state) while the workflow task that fails the run is being completed:
    since issue 19 a request runs in one task, local activities included."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = (await handle.describe()).status
        if (
            status != WorkflowExecutionStatus.RUNNING
            or asyncio.get_running_loop().time() > deadline
        ):
            return status
        await asyncio.sleep(0.1)


async def test_terminal_statuses_are_counted_and_a_failed_request_alerts(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(logs.RequestIdFilter())
    caplog.set_level(logging.INFO)
    # The SDK's workflow logger may have been pinned to the root's level of an earlier test
    # (``logs.silence_payload_debug_logs``); the outcome lines are INFO.
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    async with alert_receiver() as receiver:
        configured, secret = alert_settings(settings, receiver.url)
        async with (
            serve_api(configured) as api,
            metrics_worker(configured, store, backend=RefusingBackend(store)) as worker,
        ):
            hook_id = await ehr_webhook(api)
            doomed_id = await doomed_webhook(api)
            ok = (await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST)).json()
            bad = (await api.http.post(f"/hooks/{hook_id}", json={"reason": "x"})).json()
            test = (await api.http.post(f"/hooks/{hook_id}/test", json=EHR_REQUEST)).json()
            doomed = (await api.http.post(f"/hooks/{doomed_id}", json={"reason": "x"})).json()
            assert (await api.wait_status(ok["request_id"], {"SUCCESS"}))["status"] == "SUCCESS"
            await api.wait_status(bad["request_id"], {"REJECTED"})
            await api.wait_status(test["request_id"], {"TEST"})
            failed = await api.wait_status(doomed["request_id"], {"FAILED"})

            await asyncio.wait_for(receiver.arrived.wait(), timeout=30)
            handle = worker.client.get_workflow_handle(doomed["request_id"])
            assert await closed_status(handle) == WorkflowExecutionStatus.FAILED
            text = await worker.scrape()
            # The alert's own workflow is not a request: only the four requests are counted.
            await asyncio.sleep(0.5)
            text = await worker.scrape()

    # --- one terminal status per request, on the worker's endpoint with the SDK's metrics ----
    completed = "careflow_requests_completed_total"
    assert value(text, completed, webhook_id=hook_id, status="SUCCESS") == 1
    assert value(text, completed, webhook_id=hook_id, status="REJECTED") == 1
    assert value(text, completed, webhook_id=hook_id, status="TEST") == 1
    assert value(text, completed, webhook_id=doomed_id, status="FAILED") == 1
    assert value(text, completed, care_flow_definition_id="doomed") == 1
    assert value(text, completed) == 4
    assert value(text, "temporal_workflow_completed_total") >= 3
    assert value(text, "temporal_activity_execution_latency_count") >= 1
    failures = "careflow_backend_call_failures_total"
    assert value(text, failures, error="care_flow_definition_unpublished") == 1
    assert (
        value(text, "careflow_backend_call_duration_seconds_count", operation="start_care_flow")
        == 2
    )
    assert value(text, "careflow_alerts_sent_total", type="request.failed") == 1
    assert_no_phi(metric_labels(text))

    # --- the alert: one, signed per Standard Webhooks, ids and codes only ---------------------
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    StandardWebhook(secret).verify(body, headers)  # raises on a bad signature
    with pytest.raises(Exception):  # noqa: B017 - any verification error
        StandardWebhook("whsec_" + base64.b64encode(b"another secret!!").decode()).verify(
            body, headers
        )
    alert = json.loads(body)
    run_id = failed["temporal"]["run_id"]
    assert alert == {
        "type": "request.failed",
        "request_id": doomed["request_id"],
        "webhook_id": doomed_id,
        "care_flow_definition_id": "doomed",
        "errors": ["care_flow_definition_unpublished"],
        "at": alert["at"],
        "ui_url": f"{configured.ui_base_url}/namespaces/default/workflows/"
        f"{doomed['request_id']}/{run_id}/history",
    }
    assert datetime.fromisoformat(alert["at"]).utcoffset() is not None
    assert headers["webhook-id"] == f"{doomed['request_id']}-alert-{run_id}"

    # --- request ids on log lines written in activities (a thread) and outcome lines ---------
    started = [r for r in caplog.records if r.name == "tests.backend"]
    assert {r.request_id for r in started} == {ok["request_id"], doomed["request_id"]}  # type: ignore[attr-defined]
    outcomes = [r for r in caplog.records if r.getMessage().startswith("request outcome")]
    worker_failed = [r for r in outcomes if getattr(r, "status", None) == "FAILED"]
    assert len(worker_failed) == 1
    assert worker_failed[0].request_id == doomed["request_id"]  # type: ignore[attr-defined]
    assert worker_failed[0].codes == ["care_flow_definition_unpublished"]  # type: ignore[attr-defined]
    assert_no_phi("\n".join(caplog.handler.format(r) for r in caplog.records))


async def test_a_request_whose_conditions_are_not_met_is_counted_ignored(
    settings: Settings, store: Store
) -> None:
    async with serve_api(settings) as api, metrics_worker(settings, store) as worker:
        await add_identifier_system(api, "mrn", MRN_SYSTEM)
        await save_definition(api, "visit", [{"id": "reason", "value_type": "string"}])
        hook = await add_webhook(
            api,
            name="EHR admissions only",
            care_flow_definition_id="visit",
            data_point_mappings=[{"data_point_definition_id": "reason", "path": "$.reason"}],
            patient_identifier={"system": MRN_SYSTEM, "value_path": "$.patient.mrn"},
            conditions={
                "match": "all",
                "rules": [{"path": "$.event", "op": "equals", "value": "admission"}],
            },
        )
        hook_id = str(hook["id"])
        before = (await api.http.get("/metrics")).text
        answer = await api.http.post(
            f"/hooks/{hook_id}", json={**EHR_REQUEST, "event": "discharge"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "IGNORED"
        assert answer.json()["reasons"][0]["code"] == "conditions_not_met"
        await api.wait_status(answer.json()["request_id"], {"IGNORED"})
        after = (await api.http.get("/metrics")).text
        deadline = asyncio.get_running_loop().time() + 10
        completed = "careflow_requests_completed_total"
        while True:  # the workflow's last task may still be finishing on the worker
            worker_text = await worker.scrape()
            if value(worker_text, completed) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # The API counts the answer IGNORED (not SCHEDULED, not REJECTED), with its latency.
    requests = "careflow_webhook_requests_total"
    assert delta(requests, webhook_id=hook_id, outcome="IGNORED") == 1
    assert delta(requests, webhook_id=hook_id) == 1
    assert delta("careflow_webhook_rejections_total") == 0
    assert delta("careflow_webhook_answer_seconds_count", outcome="IGNORED") == 1
    # The worker counts the request's terminal status IGNORED, once.
    assert value(worker_text, completed, webhook_id=hook_id, status="IGNORED") == 1
    assert value(worker_text, completed, care_flow_definition_id="visit") == 1
    assert value(worker_text, completed) == 1
    labels = metric_labels(after) + "\n" + metric_labels(worker_text)
    assert_no_phi(labels)
    assert "discharge" not in labels


async def test_an_unreachable_alert_receiver_changes_nothing(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(logs.RequestIdFilter())
    caplog.set_level(logging.INFO)
    configured, _ = alert_settings(settings, f"http://127.0.0.1:{free_port()}/alerts")
    async with (
        serve_api(configured) as api,
        metrics_worker(configured, store, backend=RefusingBackend(store)) as worker,
    ):
        doomed_id = await doomed_webhook(api)
        answer = await api.http.post(f"/hooks/{doomed_id}", json={"reason": "x"})
        assert answer.status_code == 202
        request_id = answer.json()["request_id"]
        failed = await api.wait_status(request_id, {"FAILED", "SUCCESS"})
        assert failed["status"] == "FAILED"
        assert [e["code"] for e in failed["errors"]] == ["care_flow_definition_unpublished"]
        handle = worker.client.get_workflow_handle(request_id)
        assert await closed_status(handle) == WorkflowExecutionStatus.FAILED

        # The alert keeps trying, with backoff, in a workflow of its own; each miss is counted.
        alert_handle = worker.client.get_workflow_handle(
            f"{request_id}-alert-{failed['temporal']['run_id']}"
        )
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            text = await worker.scrape()
            misses = value(
                text,
                "careflow_alert_delivery_failures_total",
                type="request.failed",
                reason="unreachable",
            )
            if misses >= 1 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.3)
        assert misses >= 1
        assert (await alert_handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await alert_handle.terminate("test over")
        assert value(text, "careflow_requests_completed_total", status="FAILED") == 1
    missed = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert missed and all(r.request_id == request_id for r in missed)  # type: ignore[attr-defined]
