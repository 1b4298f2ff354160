"""Helpers for the observability tests: Prometheus text parsing, a worker whose Temporal runtime
serves metrics, a local alert receiver, and the fictional PHI values that must never leak."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from backends.base import CareFlowBackend
from careflow.settings import Settings
from infra import temporal
from infra.runtime import prometheus_runtime
from persistence.store import Store
from tests.conftest import free_port
from tests.factories import EHR_PATIENT
from tests.serving import serve_asgi
from worker import build_worker

# The fictional patient of ``tests.factories.EHR_PATIENT`` as it may appear in text.
PHI_VALUES = ("70011", "Zelda", "Quartermaine", "1980-02-29", "555-2671", "zq@example.org")
EHR_REQUEST = {"reason": "Persistent cough since March", "patient": EHR_PATIENT}
PHI_VALUES_WITH_REASON = (*PHI_VALUES, "Persistent cough")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        v
        for n, ls, v in samples(text)
        if n == name and all(ls.get(k) == w for k, w in labels.items())
    )


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def metric_names(text: str) -> set[str]:
    """The series names an exposition declares: its samples' names, and for a family declared
    (``# TYPE``) but not yet observed, the names its samples will have."""
    names = {n for n, _, _ in samples(text)}
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


@dataclass
class MetricsWorker:
    url: str
    client: Client

    async def scrape(self) -> str:
        async with httpx.AsyncClient() as http:
            return (await http.get(self.url)).text


@contextlib.asynccontextmanager
async def metrics_worker(
    settings: Settings,
    store: Store,
    *,
    backend: CareFlowBackend | None = None,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[MetricsWorker]:
    """``build_worker`` on a client whose runtime serves Prometheus metrics on a free port (as
    ``python worker.py`` does with ``CAREFLOW_WORKER_METRICS_PORT``)."""
    port = free_port()
    # The service's own connect (data converter and all), on a runtime with a metrics endpoint.
    client = await temporal.connect(settings, runtime=prometheus_runtime("127.0.0.1", port))
    executor = ThreadPoolExecutor(max_workers=8)
    worker = build_worker(
        client, store, settings, executor, backend=backend, tracer_provider=tracer_provider
    )
    task = asyncio.create_task(worker.run())
    try:
        yield MetricsWorker(url=f"http://127.0.0.1:{port}/metrics", client=client)
    finally:
        await worker.shutdown()
        with contextlib.suppress(Exception):
            await task
        executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Receiver:
    """A local HTTP endpoint recording what it receives."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def alert_receiver(status: int = 204, *first: int) -> AsyncIterator[Receiver]:
    """An alert receiver on a free port answering ``first`` statuses in turn, then ``status``."""
    pending = list(first)

    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/alerts")

    async def alerts(request: Request) -> Response:
        receiver.received.append((dict(request.headers), await request.body()))
        answer = pending.pop(0) if pending else status
        if answer < 300:
            receiver.arrived.set()
        return Response(status_code=answer)

    app = Starlette(routes=[Route("/alerts", alerts, methods=["POST"])])
    async with serve_asgi(app, port):
        yield receiver


def metric_labels(text: str) -> str:
    """Every sample name, label name and label value of a Prometheus exposition, one sample a
    line, without the sample values: where PHI could leak. (A sample value such as
    ``0.1170011…`` may contain a patient's digits by chance; it is a number we computed.)"""
    return "\n".join(
        f"{sample.name} {sample.labels}"
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )


def assert_no_phi(text: str, values: tuple[str, ...] = PHI_VALUES_WITH_REASON) -> None:
    """None of the fictional patient's values appears in ``text``."""
    leaked = [v for v in values if v in text]
    assert not leaked, f"PHI in output: {leaked}"
