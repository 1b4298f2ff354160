"""Alert bodies (ids, codes, counts only) and the rejection-rate window."""

from __future__ import annotations

from datetime import UTC, datetime

from careflow.alerts import (
    REJECTION_RATE,
    REQUEST_FAILED,
    AlertInput,
    RejectionRateWindow,
    alert_body,
)

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_request_failed_body_has_the_contract_fields() -> None:
    alert = AlertInput(
        alert_id="req_1-alert-run",
        type=REQUEST_FAILED,
        webhook_id="wh_1",
        care_flow_definition_id="intake",
        at=AT,
        request_id="req_1",
        run_id="run",
        errors=["care_flow_definition_unpublished"],
    )
    assert alert_body(alert, "http://ui/x") == {
        "type": "request.failed",
        "request_id": "req_1",
        "webhook_id": "wh_1",
        "care_flow_definition_id": "intake",
        "errors": ["care_flow_definition_unpublished"],
        "at": "2026-03-01T12:30:00Z",
        "ui_url": "http://ui/x",
    }


def test_rejection_rate_body_has_counts() -> None:
    alert = AlertInput(
        alert_id="a",
        type=REJECTION_RATE,
        webhook_id="wh_1",
        at=AT,
        rejected=3,
        total=4,
        window_seconds=60,
    )
    body = alert_body(alert, None)
    assert body["rate"] == 0.75 and body["rejected"] == 3 and body["total"] == 4
    assert body["type"] == "webhook.rejection_rate" and body["window_seconds"] == 60


def test_window_alerts_once_per_window_when_the_rate_crosses() -> None:
    window = RejectionRateWindow(threshold=0.5, window_seconds=60, min_requests=4)
    assert window.observe(0, rejected=True) is None  # too few requests
    assert window.observe(1, rejected=False) is None
    assert window.observe(2, rejected=False) is None  # accepted requests never alert
    assert window.observe(3, rejected=True) == (2, 4)  # 2/4 ≥ 0.5
    assert window.observe(4, rejected=True) is None  # one alert per window
    # A window later, the old events have left: 1 rejected of 1 is under min_requests.
    assert window.observe(70, rejected=True) is None
    for t in (71, 72):
        assert window.observe(t, rejected=True) is None
    assert window.observe(73, rejected=True) == (4, 4)


def test_window_stays_quiet_under_the_threshold() -> None:
    window = RejectionRateWindow(threshold=0.5, window_seconds=60, min_requests=2)
    outcomes = [False, False, True] * 10
    assert all(window.observe(i, rejected=r) is None for i, r in enumerate(outcomes))
