"""``send_alert``: deliver one alert to ``CAREFLOW_ALERT_WEBHOOK_URL``, signed per Standard
Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers, by the
``standardwebhooks`` library).

Every failed attempt is logged (class and status only) and counted in
``careflow_alert_delivery_failures_total``; Temporal retries with backoff (the alert workflow's
retry policy). A delivered alert counts in ``careflow_alerts_sent_total``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook as StandardWebhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from careflow import logs
from careflow.alerts import AlertInput, AlertResult, alert_body
from infra import temporal

log = logging.getLogger(__name__)

SEND_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class AlertActivities:
    """Args:
    url: the receiver (``CAREFLOW_ALERT_WEBHOOK_URL``).
    secret: the Standard Webhooks secret (``whsec_`` + base64); None sends unsigned alerts.
    ui_base_url: the Temporal Web UI's base URL; namespace: the Temporal namespace (both for
        ``ui_url``).
    """

    def __init__(self, url: str, secret: str | None, ui_base_url: str, namespace: str) -> None:
        self._url = url
        self._signer = StandardWebhook(secret) if secret else None
        self._ui_base_url = ui_base_url.rstrip("/")
        self._namespace = namespace

    def ui_url(self, alert: AlertInput) -> str | None:
        """The Temporal Web UI page of the failed request's run (None for other alerts)."""
        if alert.request_id is None:
            return None
        url = f"{self._ui_base_url}/namespaces/{self._namespace}/workflows/{alert.request_id}"
        return f"{url}/{alert.run_id}/history" if alert.run_id else url

    def _headers(self, alert: AlertInput, body: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "webhook-id": alert.alert_id}
        if self._signer is not None:
            now = datetime.now(UTC)
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(alert.alert_id, now, body)
        return headers

    @activity.defn(name=temporal.SEND_ALERT)
    def send_alert(self, alert: AlertInput) -> AlertResult:
        """POST the alert; a 2xx answer delivers it.

        Raises:
            ApplicationError: retryable ``alert_undeliverable`` (unreachable receiver, timeout,
                non-2xx answer); the message names the class or status, never the body.
        """
        with logs.request_context(alert.request_id):  # the failed request's, not the alert's id
            return self._send(alert)

    def _send(self, alert: AlertInput) -> AlertResult:
        body = json.dumps(alert_body(alert, self.ui_url(alert)), separators=(",", ":"))
        try:
            with httpx.Client(timeout=SEND_TIMEOUT) as client:
                answer = client.post(
                    self._url, content=body.encode(), headers=self._headers(alert, body)
                )
            if not answer.is_success:
                reason = f"http_{answer.status_code // 100}xx"
                raise ApplicationError(
                    f"the alert receiver answered {answer.status_code}",
                    type="alert_undeliverable",
                )
        except httpx.HTTPError as exc:
            reason = "unreachable" if isinstance(exc, httpx.TransportError) else "http_error"
            self._failed(alert, reason, type(exc).__name__)
            raise ApplicationError(
                f"alert receiver unreachable: {type(exc).__name__}", type="alert_undeliverable"
            ) from None
        except ApplicationError:
            self._failed(alert, reason, reason)
            raise
        activity.metric_meter().create_counter(
            "careflow_alerts_sent", "Alerts delivered to CAREFLOW_ALERT_WEBHOOK_URL."
        ).add(1, {"type": alert.type})
        log.info("alert %s delivered (%s)", alert.type, answer.status_code)
        return AlertResult(http_status=answer.status_code, attempt=activity.info().attempt)

    @staticmethod
    def _failed(alert: AlertInput, reason: str, what: str) -> None:
        log.warning(
            "alert %s not delivered (%s), attempt %d; retrying with backoff",
            alert.type,
            what,
            activity.info().attempt,
        )
        activity.metric_meter().create_counter(
            "careflow_alert_delivery_failures",
            "Failed alert delivery attempts (retried with backoff).",
        ).add(1, {"type": alert.type, "reason": reason})
