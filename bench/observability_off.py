"""The API with its observability taken out — the "off" side of ``bench/observability.py``.

Bench-only: the app of ``api.main`` whose Prometheus metrics are no-ops; tracing is off because
the process gets no ``OTEL_*`` variables. The per-request outcome log line stays (it is a log,
not metrics or tracing), so on ÷ off is the cost of metrics and tracing alone. Served by
uvicorn as ``--factory bench.observability_off:build_app`` (``--app-dir`` the repository).
"""

from __future__ import annotations

from typing import Any

import api.main
from api.metrics import ApiMetrics

_METRICS = (
    "requests",
    "rejections",
    "test_requests",
    "answer_seconds",
    "start_seconds",
    "start_failures",
    "slots_in_use",
    "slot_waits",
    "overloaded",
)


class _Null:
    """Accepts every prometheus-client metric call and does nothing."""

    def labels(self, *args: Any, **kwargs: Any) -> _Null:
        return self

    def inc(self, *args: Any, **kwargs: Any) -> None:
        return None

    dec = observe = set = inc


class NullMetrics(ApiMetrics):
    """``ApiMetrics`` whose metrics record nothing."""

    def __init__(self, cache_age: Any = None) -> None:
        super().__init__(cache_age)
        for name in _METRICS:
            setattr(self, name, _Null())


def build_app() -> Any:
    """The app without observability (a uvicorn ``--factory``; importing this module patches
    nothing)."""
    api.main.ApiMetrics = NullMetrics  # type: ignore[misc]
    return api.main.create_app()
