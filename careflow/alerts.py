"""Alerts for on-call engineers: what the worker sends to ``CAREFLOW_ALERT_WEBHOOK_URL``.

Two kinds, both PHI-free (ids, codes and counts only):

- ``request.failed`` — a request ended FAILED:
  ``{type, request_id, webhook_id, care_flow_definition_id, errors: [codes], at, ui_url}``.
- ``webhook.rejection_rate`` — within a window, a webhook's share of REJECTED requests reached
  the threshold: ``{type, webhook_id, care_flow_definition_id, rejected, total, rate,
  window_seconds, at}``.

The worker signs and delivers them (``activities/alerts.py``); the decision when a rejection
rate is crossed is ``RejectionRateWindow`` (pure, used by the API process that sees every
request's verdict).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel

REQUEST_FAILED: Final = "request.failed"
REJECTION_RATE: Final = "webhook.rejection_rate"


class AlertInput(BaseModel):
    """Input of the alert workflow and its ``send_alert`` activity: one alert to deliver.

    Attributes:
        alert_id: the Standard Webhooks ``webhook-id`` (stable across retries, so a receiver
            can drop duplicates).
        type: ``request.failed`` or ``webhook.rejection_rate``.
        at: when the condition arose (UTC).
        request_id / run_id: the FAILED request (``request.failed`` only); ``ui_url`` is built
            from them by the worker.
        errors: error codes of the FAILED request.
        rejected / total / window_seconds: the counts of a ``webhook.rejection_rate`` alert.
    """

    alert_id: str
    type: Literal["request.failed", "webhook.rejection_rate"]
    webhook_id: str
    care_flow_definition_id: str | None = None
    at: datetime
    request_id: str | None = None
    run_id: str | None = None
    errors: list[str] = []
    rejected: int | None = None
    total: int | None = None
    window_seconds: float | None = None


class AlertResult(BaseModel):
    """What ``send_alert`` did: the receiver's HTTP status and the attempt that delivered."""

    http_status: int
    attempt: int


def alert_body(alert: AlertInput, ui_url: str | None) -> dict[str, object]:
    """The JSON body of an alert (PHI-free: ids, codes, counts).

    Args:
        alert: what to send.
        ui_url: the Temporal Web UI page of the failed request's run, when there is one.

    Returns:
        The body as a JSON-ready dict; ``at`` is RFC 3339 UTC.
    """
    at = alert.at.isoformat().replace("+00:00", "Z")
    if alert.type == REQUEST_FAILED:
        return {
            "type": alert.type,
            "request_id": alert.request_id,
            "webhook_id": alert.webhook_id,
            "care_flow_definition_id": alert.care_flow_definition_id,
            "errors": list(alert.errors),
            "at": at,
            "ui_url": ui_url,
        }
    total = alert.total or 0
    return {
        "type": alert.type,
        "webhook_id": alert.webhook_id,
        "care_flow_definition_id": alert.care_flow_definition_id,
        "rejected": alert.rejected,
        "total": total,
        "rate": round((alert.rejected or 0) / total, 4) if total else None,
        "window_seconds": alert.window_seconds,
        "at": at,
    }


@dataclass
class RejectionRateWindow:
    """Sliding-window rejection rate of one webhook, with one alert per window at most.

    Args:
        threshold: the fraction (0 < t ≤ 1) of REJECTED requests that raises an alert.
        window_seconds: the window's length, in seconds.
        min_requests: fewer requests than this in the window never alert.
    """

    threshold: float
    window_seconds: float
    min_requests: int
    _events: deque[tuple[float, bool]] = field(default_factory=deque)
    _rejected: int = 0
    _alerted_at: float = -math.inf

    def observe(self, now: float, rejected: bool) -> tuple[int, int] | None:
        """Count one request at ``now`` (monotonic seconds).

        Returns:
            ``(rejected, total)`` in the window when this request makes the rate cross the
            threshold and no alert was raised within the last window; else None.
        """
        self._events.append((now, rejected))
        self._rejected += rejected
        while self._events and self._events[0][0] <= now - self.window_seconds:
            _, old = self._events.popleft()
            self._rejected -= old
        total = len(self._events)
        if (
            rejected
            and total >= self.min_requests
            and self._rejected >= self.threshold * total
            and now - self._alerted_at >= self.window_seconds
        ):
            self._alerted_at = now
            return self._rejected, total
        return None
