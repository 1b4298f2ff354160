"""Trace context a sender puts in its headers: only the W3C ``traceparent`` ids and flags are
honoured. Its ``tracestate`` and ``baggage`` are free text the sender controls (a patient's name
fits there as well as anywhere): they must reach neither Temporal's history (the tracing
interceptor writes its carrier as a plain, unencrypted header payload), nor exported spans,
nor the backends' outgoing calls; and span attributes carry no header value."""

from __future__ import annotations

import base64
import binascii
import json
import subprocess
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from careflow.settings import Settings
from cli import temporal_binary
from persistence.store import Store
from tests.conftest import serve_api
from tests.factories import ehr_webhook
from tests.observability import EHR_REQUEST, metrics_worker

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SENDER_HEADERS = {
    "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
    "tracestate": "acme=Zelphinia-Quartermaine",
    "baggage": "patient=MRN-77001134,born=1961-07-19",
    "User-Agent": "Zelphinia-agent/1.0",
}
CANARIES = ("Zelphinia", "MRN-77001134", "1961-07-19")


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()


def _every_text(value: object) -> list[str]:
    """Every string of a JSON document and what each base64 string decodes to."""
    if isinstance(value, dict):
        return [*value.keys(), *(t for v in value.values() for t in _every_text(v))]
    if isinstance(value, list):
        return [t for v in value for t in _every_text(v)]
    if not isinstance(value, str):
        return []
    try:
        return [value, base64.b64decode(value, validate=True).decode("utf-8", "replace")]
    except (binascii.Error, ValueError):
        return [value]


async def test_a_senders_tracestate_and_baggage_reach_neither_temporal_nor_spans(
    settings: Settings,
    store: Store,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    async with (
        serve_api(settings, provider) as api,
        metrics_worker(settings, store, tracer_provider=provider),
    ):
        hook_id = await ehr_webhook(api)
        exporter.clear()
        answer = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST, headers=SENDER_HEADERS)
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["request_id"]
        await api.wait_status(request_id, {"SUCCESS"})

    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "--workflow-id", request_id]
        + ["--address", settings.temporal_address, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    history = "\n".join(_every_text(json.loads(shown)))
    assert TRACE_ID in history  # the sender's trace id still travels into the workflow
    leaked = [c for c in CANARIES if c in history]
    assert leaked == [], f"sender trace headers in the Temporal history: {leaked}"

    finished = exporter.get_finished_spans()
    in_trace = [s for s in finished if f"{s.context.trace_id:032x}" == TRACE_ID]
    assert in_trace, "the sender's traceparent is still honoured"
    for span in finished:
        text = f"{span.context.trace_state} {dict(span.attributes or {})}"
        text += " ".join(str(dict(e.attributes or {})) for e in span.events)
        leaked = [c for c in CANARIES if c in text]
        assert leaked == [], f"span {span.name}: {leaked}: {text}"
