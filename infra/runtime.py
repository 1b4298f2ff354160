"""The worker's Temporal SDK runtime with a Prometheus endpoint.

One endpoint serves both the SDK's own metrics (``temporal_*``: task-queue polls,
schedule-to-start and execution latencies, activity failures, …) and ours (``careflow_*``),
because ours are recorded on the SDK's metric meter (``workflow.metric_meter()``, replay-safe,
and ``activity.metric_meter()``). Counters end in ``_total``; durations are seconds.
"""

from __future__ import annotations

import logging

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from careflow.settings import Settings

log = logging.getLogger(__name__)

BACKEND_CALL_DURATION = "careflow_backend_call_duration_seconds"
BACKEND_CALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def prometheus_runtime(host: str, port: int) -> Runtime:
    """A runtime serving ``http://host:port/metrics``.

    Raises:
        RuntimeError: the address cannot be bound.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{port}",
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={BACKEND_CALL_DURATION: BACKEND_CALL_BUCKETS},
            )
        )
    )


def worker_runtime(settings: Settings) -> Runtime | None:
    """The worker's runtime with its metrics endpoint, or None (the SDK's default runtime) when
    ``CAREFLOW_WORKER_METRICS_PORT`` is unset or 0, or the port cannot be bound (logged: a
    worker without metrics still processes requests)."""
    port = settings.careflow_worker_metrics_port
    if not port:
        return None
    host = settings.careflow_worker_metrics_host
    try:
        runtime = prometheus_runtime(host, port)
    except Exception as exc:
        log.error("worker metrics endpoint %s:%d not started: %s", host, port, exc)
        return None
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return runtime
