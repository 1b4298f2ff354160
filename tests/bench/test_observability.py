"""``bench/observability.py``'s "off" app really has no per-request observability: every
per-request metric of ``ApiMetrics`` is a no-op there (a metric added later and not nulled would
make the comparison unfair); its OTLP collector stand-in decodes exports and counts spans per side
(what the bench reports as each side's sampling)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client.metrics import MetricWrapperBase

from api.metrics import ApiMetrics
from tests.factories import ROOT

sys.path.insert(0, str(ROOT))
try:
    from bench import observability
finally:
    sys.path.remove(str(ROOT))


@pytest.fixture
def sink() -> Iterator[str]:
    observability._Sink.spans.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), observability._Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_collector_stand_in_counts_real_otlp_exports_by_side(sink: str) -> None:
    for side, spans in (("on", 3), ("all", 2)):
        provider = TracerProvider(resource=Resource.create({observability.SIDE_ATTRIBUTE: side}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{sink}/v1/traces"))
        )
        tracer = provider.get_tracer("test")
        for i in range(spans):
            with tracer.start_as_current_span(f"span {i}"):
                pass
        provider.shutdown()
    assert observability._Sink.spans == {"on": 3, "all": 2}
    refused = httpx.post(f"{sink}/v1/traces", content=b"\xff not protobuf")
    assert refused.status_code == 400
    assert observability._Sink.spans == {"on": 3, "all": 2}


def test_the_off_app_nulls_every_per_request_metric() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench import observability_off
    finally:
        sys.path.remove(str(ROOT))
    real = ApiMetrics()
    per_request = {
        name
        for name, value in vars(real).items()
        if isinstance(value, MetricWrapperBase) and name != "cache_age"  # a callback gauge
    }
    nulled = observability_off.NullMetrics()
    assert per_request == set(observability_off._METRICS)
    for name in per_request:
        assert not isinstance(getattr(nulled, name), MetricWrapperBase), name
    assert nulled.observe_answer is not None
