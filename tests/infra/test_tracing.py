"""Tracing: one request → one trace from the HTTP handler through the workflow start, the
workflow, each activity and the backend call (and its outgoing HTTP call), parent to child;
span attributes hold ids and codes only; nothing is traced without the OTLP settings, and an
endpoint that never answers costs the requests nothing. Sampling: the default head sampler traces
a sampled request whole and leaves no span at all for the others."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

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
    # The ASGI middleware's per-message child spans are off (``exclude_spans``).
    assert not [s for s in finished if s.name.endswith((" http receive", " http send"))]
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


@pytest.mark.parametrize(
    ("env", "ratio"),
    [
        ({}, tracing.DEFAULT_SAMPLE_RATIO),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, 0.25),
        ({"OTEL_TRACES_SAMPLER_ARG": "1"}, 1.0),
        ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, tracing.DEFAULT_SAMPLE_RATIO),
        ({"OTEL_TRACES_SAMPLER_ARG": "2"}, tracing.DEFAULT_SAMPLE_RATIO),
    ],
)
def test_the_default_sampler_is_parent_based_on_a_ratio(env: dict[str, str], ratio: float) -> None:
    sampler = tracing.sampler_from_environment(env)
    assert isinstance(sampler, ParentBased)
    assert sampler.get_description() == ParentBased(TraceIdRatioBased(ratio)).get_description()


def test_the_sampler_variable_hands_the_choice_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_always_on", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    assert tracing.sampler_from_environment(env) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = tracing.tracer_provider_from_environment("careflow-api")
    assert provider is not None
    try:
        assert provider.sampler.get_description() == "AlwaysOffSampler"
    finally:
        provider.shutdown()
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    default = tracing.sampler_from_environment({})
    assert default is not None
    provider = tracing.tracer_provider_from_environment("careflow-api")
    assert provider is not None
    try:
        assert provider.sampler.get_description() == default.get_description()
    finally:
        provider.shutdown()


async def test_a_sampled_request_is_one_whole_trace_and_the_others_leave_no_span(
    settings: Settings, store: Store
) -> None:
    """The default sampler at ratio 0.5 on the API and the worker (as both processes build it):
    each request is traced whole — handler, start, workflow, activities, backend call, in one
    trace — or not at all (no workflow or activity span of an unsampled request)."""
    exporter = InMemorySpanExporter()
    sampler = tracing.sampler_from_environment({"OTEL_TRACES_SAMPLER_ARG": "0.5"})
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    count = 24  # all sampled or none: 2 × 0.5**24, about 1e-7
    try:
        async with (
            serve_api(settings, provider) as api,
            metrics_worker(settings, store, tracer_provider=provider),
        ):
            hook_id = await ehr_webhook(api)
            answers = [
                await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST) for _ in range(count)
            ]
            assert {a.status_code for a in answers} == {202}
            request_ids = [a.json()["request_id"] for a in answers]
            await asyncio.gather(*(api.wait_status(r, {"SUCCESS"}) for r in request_ids))
    finally:
        provider.shutdown()

    finished = exporter.get_finished_spans()
    start = "StartWorkflow:WebhookRequestWorkflow"
    traced = {
        s.attributes["temporalWorkflowID"]: s.context.trace_id
        for s in finished
        if s.name == start and s.attributes
    }
    assert 0 < len(traced) < count
    assert set(traced) <= set(request_ids)
    # Every span belongs to the trace of a sampled request: nothing of the unsampled ones. (The
    # test's status reads are queries from the API's client: traces of their own, sampled alike.)
    queries = ("QueryWorkflow:", "HandleQuery:")
    assert {s.context.trace_id for s in finished if not s.name.startswith(queries)} == set(
        traced.values()
    )
    required = {
        "POST /hooks/{webhook_id}",
        start,
        "RunWorkflow:WebhookRequestWorkflow",
        "CompleteWorkflow:WebhookRequestWorkflow",
        "RunActivity:start_care_flow",
        "careflow.backend start_care_flow",
    }
    for request_id, trace_id in traced.items():
        names = {s.name for s in finished if s.context.trace_id == trace_id}
        assert required <= names, (request_id, sorted(names))
        servers = [
            s
            for s in finished
            if s.context.trace_id == trace_id and s.name == "POST /hooks/{webhook_id}"
        ]
        assert len(servers) == 1 and servers[0].parent is None  # the request's root


async def test_a_senders_sampled_traceparent_is_honoured_and_a_bad_one_ignored(
    settings: Settings, store: Store
) -> None:
    """Ratio 0: nothing of our own is traced, but a sender's ``traceparent`` marked sampled is
    (parent-based); malformed or oversized ones are ignored, never an error."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=tracing.sampler_from_environment({"OTEL_TRACES_SAMPLER_ARG": "0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sender_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    hostile = [
        {},
        {"traceparent": "00-zz-00f067aa0ba902b7-01"},
        {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"},  # all-zero trace id
        {"traceparent": "00-" + "a" * 8000 + "-01"},
        {"traceparent": f"00-{sender_trace}-00f067aa0ba902b7-00"},  # the sender did not sample
    ]
    try:
        async with serve_api(settings, provider) as api:
            hook_id = await ehr_webhook(api)
            for headers in hostile:
                answer = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST, headers=headers)
                assert answer.status_code == 202, (headers, answer.text)
            assert exporter.get_finished_spans() == ()
            sampled = {"traceparent": f"00-{sender_trace}-00f067aa0ba902b7-01"}
            answer = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST, headers=sampled)
            assert answer.status_code == 202
    finally:
        provider.shutdown()
    finished = exporter.get_finished_spans()
    assert {s.name for s in finished} == {
        "POST /hooks/{webhook_id}",
        "StartWorkflow:WebhookRequestWorkflow",
    }
    assert {format(s.context.trace_id, "032x") for s in finished} == {sender_trace}


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


async def test_an_unknown_webhook_path_is_sender_text_and_stays_out_of_spans(
    settings: Settings, store: Store, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """PHI review N3: ``/hooks/<anything>`` for no known webhook keeps only the route's template
    in the span's URL attributes; a known webhook's id (configuration) stays."""
    provider, exporter = spans
    async with serve_api(settings, provider) as api:
        hook_id = await ehr_webhook(api)
        for path in ("/hooks/phiPATH7707-Zelphinia", "/hooks/phiPATH7707-Zelphinia/test"):
            answer = await api.http.post(path, json=EHR_REQUEST)
            assert answer.status_code == 404
        assert (await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST)).status_code == 202
    shown = [
        str(dict(s.attributes or {}))
        for s in exporter.get_finished_spans()
        if s.name.startswith("POST /hooks")
    ]
    assert len(shown) == 3
    assert not [a for a in shown if "phiPATH7707" in a or "Zelphinia" in a], shown
    assert any("/hooks/{webhook_id}/test" in a for a in shown)
    assert any(f"/hooks/{hook_id}" in a for a in shown)
