"""The rejection-rate alert: a webhook whose share of REJECTED requests crosses the threshold
raises one signed ``webhook.rejection_rate`` alert, delivered by the worker."""

from __future__ import annotations

import asyncio
import json

from standardwebhooks.webhooks import Webhook as StandardWebhook

from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import serve_api
from tests.factories import ehr_webhook
from tests.observability import EHR_REQUEST, alert_receiver, assert_no_phi, metrics_worker
from tests.workflows.test_telemetry import alert_settings


async def test_a_rejection_rate_over_the_threshold_raises_one_alert(
    settings: Settings, store: Store
) -> None:
    async with alert_receiver() as receiver:
        configured, secret = alert_settings(settings, receiver.url)
        configured = configured.model_copy(
            update={
                "careflow_alert_rejection_rate": 0.5,
                "careflow_alert_rejection_window_seconds": 120,
                "careflow_alert_rejection_min_requests": 4,
            }
        )
        async with serve_api(configured) as api, metrics_worker(configured, store):
            hook_id = await ehr_webhook(api)
            incomplete = {"patient": EHR_REQUEST["patient"]}  # no reason: REJECTED
            for body in (EHR_REQUEST, incomplete, EHR_REQUEST):
                await api.http.post(f"/hooks/{hook_id}", json=body)
            assert not receiver.received  # 1 of 3: too few requests
            for _ in range(4):  # 2/4 crosses; later crossings fall in the same window
                await api.http.post(f"/hooks/{hook_id}", json=incomplete)
            await asyncio.wait_for(receiver.arrived.wait(), timeout=30)
            await asyncio.sleep(1)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    StandardWebhook(secret).verify(body, headers)
    alert = json.loads(body)
    assert alert["type"] == "webhook.rejection_rate"
    assert alert["webhook_id"] == hook_id
    assert (alert["rejected"], alert["total"]) == (2, 4)
    assert alert["window_seconds"] == 120
    assert_no_phi(body.decode())
