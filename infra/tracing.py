"""OpenTelemetry tracing, configured from the standard ``OTEL_*`` environment variables.

Tracing is on when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set (and ``OTEL_SDK_DISABLED`` is not ``true``): spans are exported over OTLP with the protocol
of ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``,
the default, or ``grpc``) from a ``BatchSpanProcessor``: a background thread with a bounded
queue, so an endpoint that does not answer costs requests nothing (spans are dropped when the
queue is full). When tracing is off nothing is instrumented at all — no middleware, no
interceptor, no httpx patch.

Sampling is decided once, at the API, per request (head sampling): ``OTEL_TRACES_SAMPLER`` (and
``OTEL_TRACES_SAMPLER_ARG``) as the SDK reads them; unset, ``parentbased_traceidratio`` with
``DEFAULT_SAMPLE_RATIO`` (``OTEL_TRACES_SAMPLER_ARG`` alone changes the ratio). The decision
travels with the trace context into the workflow's headers and the worker's spans follow it
(parent-based), so a sampled request is one whole trace and an unsampled one leaves no span
anywhere; a sender's ``traceparent`` marked sampled is traced whatever the ratio.

One trace per request: the FastAPI instrumentation opens the server span of ``POST
/hooks/{id}``; ``temporalio.contrib.opentelemetry.TracingInterceptor`` on the API's client
carries it into the workflow start's headers, and on the worker into the workflow and each
activity; the backend call is a span of its own (``activities/backend_telemetry.py``), and the
httpx instrumentation adds a span per outgoing HTTP call of an HTTP backend. Span attributes hold
ids, routes and status codes only; the admin and UI routes are not traced at all (their query
strings may hold patient identifiers).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.contrib.opentelemetry import TracingInterceptor

TRACER_NAME = "careflow"
# Only the ingest routes (``/hooks/...``) are traced: the admin routes
# (``/v1/patients?identifier=system|value``) and the UI may carry PHI in their URLs. A regex on
# ``scheme://host/path`` (the instrumentation's ``excluded_urls``).
UNTRACED_URLS = r"^[a-z]+://[^/]*/(?!hooks/)"
# Without OTEL_TRACES_SAMPLER: one request in ten traced (bench/observability.py measures why).
DEFAULT_SAMPLE_RATIO = 0.1


# Span attributes the HTTP instrumentations copy from request header values.
_HEADER_VALUE_ATTRIBUTES = ("http.user_agent", "user_agent.original")


def _drop_query_from_urls(span: trace.Span) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.url", "url.full", "http.target"):
        url = attributes.get(key)
        if isinstance(url, str) and "?" in url:
            span.set_attribute(key, url.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def drop_query_attributes(span: trace.Span, scope: dict[str, Any]) -> None:
    """FastAPI ``server_request_hook``: a sender may put anything in a webhook URL's query, so
    the server span keeps the path only (``http.target``, ``http.url`` without the query); and
    in its headers, so the ``User-Agent`` the instrumentation records is blanked."""
    if not span.is_recording():
        return
    if scope.get("query_string"):
        _drop_query_from_urls(span)
    attributes = getattr(span, "attributes", None) or {}
    for key in _HEADER_VALUE_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def hide_unknown_path(template: str) -> None:
    """Replace the current server span's path with ``template`` (e.g. ``/hooks/{webhook_id}``)
    in its URL attributes: a path naming no known resource is sender text (which may be PHI);
    a known webhook's id is configuration and stays."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.target", "url.path"):
        if key in attributes:
            span.set_attribute(key, template)
    for key in ("http.url", "url.full"):
        url = attributes.get(key)
        if isinstance(url, str):
            origin = url.split("/", 3)[:3]  # scheme, "", host[:port]
            span.set_attribute(key, "/".join(origin) + template)


def _client_request_hook(span: trace.Span, request: Any) -> None:
    """httpx ``request_hook``: outgoing URLs are recorded without their query."""
    if span.is_recording():
        _drop_query_from_urls(span)


async def _async_client_request_hook(span: trace.Span, request: Any) -> None:
    _client_request_hook(span, request)


def enabled_by_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether the standard OTLP variables ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def otlp_exporter(environ: os._Environ[str] | dict[str, str] | None = None) -> SpanExporter:
    """The OTLP span exporter for the configured protocol; endpoint, headers and timeouts come
    from the ``OTEL_EXPORTER_OTLP_*`` variables, read by the exporter itself.

    Raises:
        ValueError: an unknown protocol (only ``http/protobuf`` and ``grpc`` are supported).
    """
    env = os.environ if environ is None else environ
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    raise ValueError(f"unsupported OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}")


def sampler_from_environment(
    environ: os._Environ[str] | dict[str, str] | None = None,
) -> Sampler | None:
    """Our default sampler, or None when ``OTEL_TRACES_SAMPLER`` is set (the SDK then builds the
    one it names, with ``OTEL_TRACES_SAMPLER_ARG``).

    Returns:
        ``ParentBased(TraceIdRatioBased(ratio))``: ratio ``OTEL_TRACES_SAMPLER_ARG`` when it is a
        number in [0, 1], else ``DEFAULT_SAMPLE_RATIO``.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    ratio = DEFAULT_SAMPLE_RATIO
    try:
        given = float(env.get("OTEL_TRACES_SAMPLER_ARG", ""))
    except ValueError:
        given = -1.0
    if 0.0 <= given <= 1.0:
        ratio = given
    return ParentBased(TraceIdRatioBased(ratio))


def tracer_provider_from_environment(service_name: str) -> TracerProvider | None:
    """An SDK tracer provider exporting over OTLP, or None when tracing is off.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
    """
    if not enabled_by_environment():
        return None
    provider = TracerProvider(
        sampler=sampler_from_environment(),
        resource=Resource.create({SERVICE_NAME: service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(otlp_exporter()))
    return provider


def tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    """Our tracer on ``provider``; a no-op tracer when tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(TRACER_NAME)


def temporal_interceptors(provider: trace.TracerProvider | None) -> list[TracingInterceptor]:
    """The Temporal tracing interceptor on ``provider`` (none when tracing is off)."""
    if provider is None:
        return []
    return [TracingInterceptor(tracer(provider))]


def instrument_httpx(provider: trace.TracerProvider | None) -> None:
    """Trace every outgoing httpx call of this process (the HTTP backends' calls)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(
            tracer_provider=provider,
            request_hook=_client_request_hook,
            async_request_hook=_async_client_request_hook,
        )


def uninstrument_httpx() -> None:
    """Undo ``instrument_httpx`` (tests)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


class SenderTraceParent(TextMapPropagator):
    """W3C trace context from a sender's headers: its ``traceparent`` (trace id, parent span id,
    sampled flag) only.

    The default propagators also take the sender's ``tracestate`` and ``baggage``: free text the
    sender controls, which would then travel in the clear into Temporal's history (the tracing
    interceptor's header payload is not encrypted by the payload codec), into every exported
    span's trace state and into the backends' outgoing HTTP calls. This one drops both.
    """

    def __init__(self) -> None:
        self._trace_context = TraceContextTextMapPropagator()

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """The ``traceparent`` of ``carrier`` in ``context`` with an empty trace state."""
        extracted = self._trace_context.extract(carrier, context, getter)
        parent = trace.get_current_span(extracted).get_span_context()
        if parent.is_valid and len(parent.trace_state):
            plain = trace.SpanContext(
                parent.trace_id,
                parent.span_id,
                is_remote=parent.is_remote,
                trace_flags=parent.trace_flags,
            )
            extracted = trace.set_span_in_context(trace.NonRecordingSpan(plain), extracted)
        return extracted

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write ``traceparent`` only."""
        written: dict[str, str] = {}
        self._trace_context.inject(written, context)
        if "traceparent" in written:
            setter.set(carrier, "traceparent", written["traceparent"])

    @property
    def fields(self) -> set[str]:
        return {"traceparent"}


def honour_sender_trace_ids_only() -> None:
    """Make ``SenderTraceParent`` the process's propagator (the API's, before the FastAPI
    instrumentation extracts the context of incoming webhook requests)."""
    set_global_textmap(SenderTraceParent())
