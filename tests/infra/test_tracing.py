"""Tracing: one request → one trace from the HTTP handler through the workflow start, the
workflow, each activity and the backend call (and its outgoing HTTP call), parent to child;
span attributes hold ids and codes only; nothing is traced without the OTLP settings, and an
endpoint that never answers costs the requests nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backends.builtin import BuiltinBackend
from careflow.answers import CareFlow
from careflow.settings import Settings
from infra import tracing
from persistence.store import Store
from tests.conftest import free_port, serve_api
from tests.factories import ehr_webhook
from tests.observability import EHR_REQUEST, PHI_VALUES_WITH_REASON, metrics_worker


class HttpCallingBackend(BuiltinBackend):
    """The built-in backend plus one outgoing HTTP call per care-flow start (as the Awell
    backend makes), to a real local endpoint."""

    kind = "builtin"

    def __init__(self, store: Store, url: str) -> None:
        super().__init__(store)
        self._url = url

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[CareFlow, bool]:
        httpx.get(self._url).raise_for_status()
        return super().start_care_flow(
            care_flow_definition_id, patient_id, data_points, idempotency_key
        )


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument_httpx(provider)
    try:
        yield provider, exporter
    finally:
        tracing.uninstrument_httpx()
        provider.shutdown()


def _by_id(finished: tuple[ReadableSpan, ...]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in finished}


def _ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_request_is_one_trace_from_handler_to_backend_call(
    settings: Settings,
    store: Store,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    async with serve_api(settings) as plain:  # for the backend's outgoing call only
        health_url = f"{plain.base_url}/healthz"
        backend = HttpCallingBackend(store, health_url)
        async with (
            serve_api(
                settings.model_copy(update={"careflow_api_port": free_port()}), provider
            ) as api,
            metrics_worker(settings, store, backend=backend, tracer_provider=provider),
        ):
            hook_id = await ehr_webhook(api)
            exporter.clear()
            answer = await api.http.post(f"/hooks/{hook_id}?name=Zelda", json=EHR_REQUEST)
            assert answer.status_code == 202
            request_id = answer.json()["request_id"]
            await api.wait_status(request_id, {"SUCCESS"})
            # Admin routes are not traced (their queries may hold identifiers).
            await api.admin("GET", "/v1/patients?identifier=urn:x|70011")

    finished = exporter.get_finished_spans()
    index = _by_id(finished)
    server = [s for s in finished if s.name == "POST /hooks/{webhook_id}"]
    assert len(server) == 1
    trace_id = server[0].context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    # The SDK's workflow spans are instants (a workflow may replay; an open span could not),
    # children of the start: RunWorkflow, each StartActivity, CompleteWorkflow. Each activity's
    # run is the child of its start, the backend call the child of the run, and the backend's
    # HTTP call the child of the backend call.
    start = "StartWorkflow:WebhookRequestWorkflow"
    expected_chain = {
        start: ["POST /hooks/{webhook_id}"],
        "RunWorkflow:WebhookRequestWorkflow": [start],
        "CompleteWorkflow:WebhookRequestWorkflow": [start],
    }
    for activity in ("validate_request", "resolve_patient", "start_care_flow"):
        expected_chain[f"StartActivity:{activity}"] = [start]
        expected_chain[f"RunActivity:{activity}"] = [f"StartActivity:{activity}", start]
    expected_chain["careflow.backend start_care_flow"] = [
        "RunActivity:start_care_flow",
        "StartActivity:start_care_flow",
    ]
    expected_chain["careflow.backend create_patient"] = ["RunActivity:resolve_patient"]
    expected_chain["GET"] = ["careflow.backend start_care_flow", "RunActivity:start_care_flow"]
    for name, chain in expected_chain.items():
        matching = [s for s in in_trace if s.name == name]
        assert len(matching) == 1, (name, sorted(names))
        ancestors = _ancestors(matching[0], index)
        assert ancestors[: len(chain)] == chain, (name, ancestors)
        # The server span is the request's root here, under the test client's own span (the
        # httpx instrumentation is process-wide, and a sender's traceparent is honoured).
        assert "POST /hooks/{webhook_id}" in ancestors, (name, ancestors)
    backend_span = next(s for s in in_trace if s.name == "careflow.backend start_care_flow")
    assert backend_span.attributes is not None
    assert backend_span.attributes["careflow.backend.kind"] == "builtin"
    # One trace for the request; the admin call made none.
    assert {s.context.trace_id for s in finished if "hooks" in s.name} == {trace_id}
    assert not [s for s in finished if "/v1/" in s.name]

    # No PHI in any span attribute (the query string the sender added included).
    texts = [
        f"{s.name} {dict(s.attributes or {})} {[dict(e.attributes or {}) for e in s.events]}"
        for s in finished
    ]
    for text in texts:
        for phi in PHI_VALUES_WITH_REASON:
            assert phi not in text, (phi, text)


def test_tracing_is_off_without_the_otlp_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.tracer_provider_from_environment("careflow-api") is None
    assert tracing.temporal_interceptors(None) == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.tracer_provider_from_environment("careflow-api") is None


@pytest.mark.parametrize(
    ("protocol", "module"),
    [
        (None, "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
        ("http/protobuf", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
        ("grpc", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
    ],
)
def test_the_protocol_variable_picks_the_exporter(protocol: str | None, module: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    if protocol:
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    exporter = tracing.otlp_exporter(env)
    try:
        assert type(exporter).__module__ == module
    finally:
        exporter.shutdown()
    with pytest.raises(ValueError, match="http/json"):
        tracing.otlp_exporter({**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_an_endpoint_that_never_answers_costs_requests_nothing(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """A socket that accepts connections and never answers: every request is still answered
    (spans leave from the batch processor's thread, never from the request)."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        port = blackhole.getsockname()[1]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        provider = tracing.tracer_provider_from_environment("careflow-api")
        assert provider is not None
        try:
            async with serve_api(settings, provider) as api:
                hook_id = await ehr_webhook(api)
                for _ in range(20):
                    answer = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST)
                    assert answer.status_code == 202
        finally:
            provider.shutdown()
