"""The API's Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

Labels are bounded: a webhook id (ids of configured webhooks only; an unknown id is counted as
``unknown``), an outcome (a request status or an error code), a verdict, a reason. Never a
request id, a payload value or anything a sender chooses freely.

============================================  ===============================================
``careflow_webhook_requests_total``           real requests by ``webhook_id`` and ``outcome``:
                                              ``SCHEDULED``, ``REJECTED``, ``IGNORED``,
                                              ``duplicate``, or the refusal's code
                                              (``rate_limited``, ``temporal_unavailable``,
                                              ``webhook_not_found``, ``request_timeout``)
``careflow_webhook_rejections_total``         error codes of REJECTED requests by
                                              ``webhook_id`` and ``code``
``careflow_webhook_test_requests_total``      test-link requests by ``webhook_id``, ``verdict``
``careflow_webhook_answer_seconds``           handler latency (histogram) by ``outcome``
``careflow_workflow_start_seconds``           latency of successful workflow starts
``careflow_workflow_start_failures_total``    failed starts by ``reason`` (an RPC status name,
                                              ``connect``, ``overloaded``)
``careflow_start_slots_in_use``               workflow starts in flight (backpressure gauge)
``careflow_start_slot_waits_total``           starts that had to wait for a free slot
``careflow_start_overloaded_total``           503s because no slot freed up in time
``careflow_config_cache_age_seconds``         seconds since the configuration was last checked
============================================  ===============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.metrics import MetricWrapperBase

_M = TypeVar("_M", bound=MetricWrapperBase)

UNKNOWN_WEBHOOK = "unknown"
# Answers are fast (in-process validation + one workflow start): fine buckets below 1 s.
ANSWER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The API process's metrics, on a registry of its own (one per app).

    Args:
        cache_age: returns the configuration cache's age in seconds (for the gauge).
    """

    def __init__(self, cache_age: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "careflow_webhook_requests",
            "Requests to webhook URLs by outcome (status or refusal code).",
            ["webhook_id", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "careflow_webhook_rejections",
            "Error codes of REJECTED requests.",
            ["webhook_id", "code"],
            registry=r,
        )
        self.test_requests = Counter(
            "careflow_webhook_test_requests",
            "Requests to test links by verdict.",
            ["webhook_id", "verdict"],
            registry=r,
        )
        self.answer_seconds = Histogram(
            "careflow_webhook_answer_seconds",
            "Time from the request reaching the handler to the answer, in seconds.",
            ["outcome"],
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.start_seconds = Histogram(
            "careflow_workflow_start_seconds",
            "Latency of successful workflow starts (slot wait excluded), in seconds.",
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.start_failures = Counter(
            "careflow_workflow_start_failures",
            "Workflow starts that failed (answered 503) by reason.",
            ["reason"],
            registry=r,
        )
        self.slots_in_use = Gauge(
            "careflow_start_slots_in_use", "Workflow starts in flight.", registry=r
        )
        self.slot_waits = Counter(
            "careflow_start_slot_waits",
            "Workflow starts that found no free slot at once and waited.",
            registry=r,
        )
        self.overloaded = Counter(
            "careflow_start_overloaded",
            "Requests answered 503 because no start slot freed up within the wait.",
            registry=r,
        )
        self.cache_age = Gauge(
            "careflow_config_cache_age_seconds",
            "Seconds since this process last checked the configuration revision.",
            registry=r,
        )
        if cache_age is not None:
            self.cache_age.set_function(cache_age)
        # Each label combination's child, looked up once: ``.labels()`` validates and joins the
        # values under a lock on every call. Bounded like the labels themselves.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: _M, *labels: str) -> _M:
        """``metric.labels(*labels)``, cached per label values.

        Args:
            metric: one of this object's labelled metrics; labels: its label values in order.
        """
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[no-any-return]

    def observe_answer(
        self, webhook_id: str | None, http_status: int, body: dict[str, Any], seconds: float
    ) -> str:
        """Count one ingest answer and its latency.

        Args:
            webhook_id: the configured webhook's id; None for an unknown id.
            http_status: the answer's status; body: the answer's JSON body.
            seconds: the handler's latency.

        Returns:
            The outcome label it was counted under.
        """
        label = webhook_id if webhook_id is not None else UNKNOWN_WEBHOOK
        codes = [e.get("code", "") for e in body.get("errors") or () if isinstance(e, dict)]
        if "verdict" in body:  # a test link's answer
            outcome = "TEST"
            self.child(self.test_requests, label, str(body["verdict"])).inc()
        elif body.get("duplicate"):
            outcome = "duplicate"
        elif "status" in body:
            outcome = str(body["status"])
            if outcome == "REJECTED":
                for code in sorted(set(codes)):
                    self.child(self.rejections, label, code).inc()
        else:
            outcome = codes[0] if codes else f"http_{http_status}"
        if outcome != "TEST":
            self.child(self.requests, label, outcome).inc()
        self.child(self.answer_seconds, outcome).observe(seconds)
        return outcome

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
