"""What the API records about each ingest answer: metrics, one structured log line, and the
rejection-rate alert check.

The log line (logger ``careflow.requests``) carries ``webhook_id``, ``status`` (the outcome) and
``codes`` as record fields — so ``CAREFLOW_LOG_FORMAT=json`` writes them as JSON keys — plus the
``request_id`` bound by the ingest service. No payload value, ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import Response
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.metrics import ApiMetrics
from careflow import alerts
from careflow.models import Webhook
from careflow.settings import Settings
from workflows.alerts import AlertWorkflow

log = logging.getLogger("careflow.requests")


class RejectionRateAlerts:
    """Per-webhook sliding windows (``careflow.alerts.RejectionRateWindow``) in this API process;
    a crossing starts an ``AlertWorkflow`` (the worker delivers it, signed and retried). Its id
    holds the webhook id and the window's number, so API replicas crossing in the same window
    start one alert between them.

    Args:
        client: the Temporal client; settings: threshold, window, minimum requests, task queue.
    """

    def __init__(self, client: Client, settings: Settings) -> None:
        assert settings.careflow_alert_rejection_rate is not None
        self._client = client
        self._settings = settings
        self._threshold = settings.careflow_alert_rejection_rate
        self._windows: dict[str, alerts.RejectionRateWindow] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def observe(self, hook: Webhook, outcome: str) -> None:
        """Count one real request's outcome; start an alert (in the background) on a crossing."""
        if outcome not in ("SCHEDULED", "REJECTED", "IGNORED"):
            return
        window = self._windows.get(hook.id)
        if window is None:
            window = self._windows[hook.id] = alerts.RejectionRateWindow(
                self._threshold,
                self._settings.careflow_alert_rejection_window_seconds,
                self._settings.careflow_alert_rejection_min_requests,
            )
        crossed = window.observe(time.monotonic(), outcome == "REJECTED")
        if crossed is None:
            return
        task = asyncio.create_task(self._start(hook, *crossed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, hook: Webhook, rejected: int, total: int) -> None:
        seconds = self._settings.careflow_alert_rejection_window_seconds
        bucket = int(time.time() // seconds)
        alert_id = f"alert-rejection-rate-{hook.id}-{bucket}"
        alert = alerts.AlertInput(
            alert_id=alert_id,
            type=alerts.REJECTION_RATE,
            webhook_id=hook.id,
            care_flow_definition_id=hook.care_flow_definition_id,
            at=datetime.now(UTC),
            rejected=rejected,
            total=total,
            window_seconds=seconds,
        )
        log.warning(
            "webhook %s rejection rate %d/%d crossed the alert threshold",
            hook.id,
            rejected,
            total,
            extra={"webhook_id": hook.id, "rejected": rejected, "total": total},
        )
        try:
            await self._client.start_workflow(
                AlertWorkflow.run,
                alert,
                id=alert_id,
                task_queue=self._settings.careflow_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # another API replica raised this window's alert
        except Exception as exc:  # an alert never disturbs ingest
            log.warning("rejection-rate alert not started: %s", type(exc).__name__)


class IngestTelemetry:
    """Metrics, the outcome log line and the rejection-rate check of each ingest answer.

    Args:
        metrics: the API's metrics; rejection_alerts: None when the setting is off.
    """

    def __init__(
        self, metrics: ApiMetrics, rejection_alerts: RejectionRateAlerts | None = None
    ) -> None:
        self.metrics = metrics
        self._rejection_alerts = rejection_alerts

    def observe(self, hook: Webhook | None, response: Response, seconds: float) -> None:
        """Record one answer of ``POST /hooks/{id}`` (or its test link).

        Args:
            hook: the webhook, None for an unknown id.
            response: the rendered JSON answer.
            seconds: handler latency.
        """
        try:
            body: dict[str, Any] = json.loads(bytes(response.body))
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        outcome = self.metrics.observe_answer(
            hook.id if hook else None, response.status_code, body, seconds
        )
        codes = sorted({e.get("code", "") for e in body.get("errors") or () if isinstance(e, dict)})
        webhook_id = hook.id if hook else None
        log.info(
            "request outcome webhook=%s status=%s http=%d codes=%s",
            webhook_id or "-",
            outcome,
            response.status_code,
            ",".join(codes) or "-",
            extra={
                "webhook_id": webhook_id,
                "status": outcome,
                "http_status": response.status_code,
                "codes": codes,
            },
        )
        if hook is not None and self._rejection_alerts is not None and outcome != "TEST":
            self._rejection_alerts.observe(hook, outcome)
