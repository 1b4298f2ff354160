"""The care-flow backend, observed: every call is a span and a latency sample.

``InstrumentedBackend`` wraps any ``CareFlowBackend`` (built-in, Temporal workflow, Awell) and
forwards every method — including ones added to the protocol later — so that each call:

- opens a span ``careflow.backend <method>`` (attributes: ``careflow.backend.kind``, the method,
  and the error code on failure — never arguments), child of the activity's span; an HTTP
  backend's outgoing calls (httpx, instrumented when tracing is on) nest under it;
- records ``careflow_backend_call_duration_seconds{backend, operation, outcome}`` and, on
  failure, ``careflow_backend_call_failures_total{backend, operation, error}`` on the activity's
  Temporal metric meter (exported with the SDK's metrics on the worker's metrics port). Outside
  an activity (none today) nothing is recorded.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from temporalio import activity

from backends.base import BackendRefusedError, BackendUnavailableError, CareFlowBackend
from infra import runtime

DURATION_METRIC = runtime.BACKEND_CALL_DURATION  # its buckets are set on the worker's runtime
FAILURES_METRIC = "careflow_backend_call_failures"


def error_code(exc: BaseException) -> str:
    """A bounded label for a backend failure: the backend's code, else a class of fault."""
    if isinstance(exc, BackendRefusedError):
        return exc.code
    if isinstance(exc, BackendUnavailableError):
        return "backend_unavailable"
    return "backend_error"


class InstrumentedBackend:
    """Args: backend: the backend to observe; kind: its kind (``builtin``, ``temporal``,
    ``awell``) for labels; tracer: the worker's tracer (a no-op one when tracing is off)."""

    def __init__(self, backend: CareFlowBackend, kind: str, tracer: trace.Tracer) -> None:
        self._backend = backend
        self._kind = kind
        self._tracer = tracer

    @property
    def wrapped(self) -> CareFlowBackend:
        """The backend itself."""
        return self._backend

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._backend, name)
        if name.startswith("_") or not callable(target):
            return target
        return self._observed(name, target)

    def _observed(self, operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def observed(*args: Any, **kwargs: Any) -> Any:
            attributes = {
                "careflow.backend.kind": self._kind,
                "careflow.backend.operation": operation,
            }
            with self._tracer.start_as_current_span(
                f"careflow.backend {operation}",
                attributes=attributes,
                record_exception=False,  # exception messages may quote what the backend got
                set_status_on_exception=False,
            ) as span:
                started = time.perf_counter()
                try:
                    result = call(*args, **kwargs)
                except Exception as exc:
                    code = error_code(exc)
                    span.set_attribute("careflow.error.code", code)
                    span.set_status(Status(StatusCode.ERROR, code))
                    self._record(operation, time.perf_counter() - started, code)
                    raise
                self._record(operation, time.perf_counter() - started, None)
                return result

        return observed

    def _record(self, operation: str, seconds: float, code: str | None) -> None:
        if not activity.in_activity():
            return
        meter = activity.metric_meter()
        labels = {"backend": self._kind, "operation": operation}
        meter.create_histogram_float(
            DURATION_METRIC, "Care-flow backend call latency, in seconds.", "s"
        ).record(seconds, {**labels, "outcome": "error" if code else "ok"})
        if code is not None:
            meter.create_counter(
                FAILURES_METRIC, "Care-flow backend calls that raised, by error code."
            ).add(1, {**labels, "error": code})


def instrument(backend: CareFlowBackend, kind: str, tracer: trace.Tracer) -> CareFlowBackend:
    """``backend`` wrapped in an ``InstrumentedBackend`` (typed as the protocol it forwards)."""
    return cast(CareFlowBackend, InstrumentedBackend(backend, kind, tracer))
