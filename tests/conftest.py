"""Shared fixtures: a real Temporal dev server (session), a real SQLite store, a worker and the
API on real ports per test. Nothing is mocked. Builders (configuration, payloads, workflow
starts) are in ``tests/factories.py``."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from careflow.settings import Settings
from infra import codec, temporal
from infra.keyring import KeyRing
from persistence.store import Store
from worker import build_worker

ADMIN_TOKEN = "test-admin-token"
# The key ring of every test's API, worker and client (fixed, so runs are reproducible).
TEST_KEY_ID = "test-a"
TEST_KEYS = "test-a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
TEST_RING = KeyRing.parse(TEST_KEYS)
TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")


_PICK = random.SystemRandom()  # not the ``random`` module's state, which tests may seed


def free_port() -> int:
    """A port free to listen on, below the kernel's ephemeral range.

    Not ``bind(port 0)``: that hands out ports of the ephemeral range, from which outgoing
    connections (the tests' gRPC and HTTP clients) take their local ports, and a port handed out
    that way was found taken by one when the server bound it a moment later (CI: 40 tests
    failing on one port with ``address already in use``).
    """
    low = max(_ephemeral_low(), 10_001)
    for _ in range(200):
        port = _PICK.randint(10_000, low - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


async def start_dev_server(*, register: bool = True) -> WorkflowEnvironment:
    """A Temporal dev server from temporal-bin on a free port (works offline)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        data_converter=codec.data_converter(TEST_RING),
        search_attributes=temporal.SEARCH_ATTRIBUTES if register else (),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    await temporal.ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def settings(tmp_path: Path, temporal_env: WorkflowEnvironment) -> Settings:
    """Settings of one test: its own data dir, database and task queue."""
    return Settings(
        careflow_admin_token=ADMIN_TOKEN,
        careflow_encryption_keys=TEST_KEYS,
        careflow_data_dir=tmp_path / "data",
        careflow_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        temporal_address=temporal_env.client.service_client.config.target_host,
        careflow_api_port=free_port(),
        activity_max_attempts=3,
        activity_max_seconds=20,
        config_refresh_seconds=0.2,
        careflow_workflow_sandbox=True,  # a non-deterministic call in a workflow fails the test
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.sqlalchemy_url, key_ring=TEST_RING)
    store.migrate()
    yield store
    store.dispose()


@dataclass
class RunningWorker:
    worker: Worker | None
    start: Callable[[], Any]
    stop: Callable[[], Any]


@pytest.fixture
async def worker(
    temporal_client: Client, store: Store, settings: Settings
) -> AsyncIterator[RunningWorker]:
    """A worker on the test's task queue; tests may stop and start it."""
    executor = ThreadPoolExecutor(max_workers=8)
    holder = RunningWorker(worker=None, start=lambda: None, stop=lambda: None)

    async def start() -> None:
        holder.worker = build_worker(temporal_client, store, settings, executor)
        holder.task = asyncio.create_task(holder.worker.run())  # type: ignore[attr-defined]

    async def stop() -> None:
        if holder.worker is not None:
            await holder.worker.shutdown()
            with contextlib.suppress(Exception):
                await holder.task  # type: ignore[attr-defined]
            holder.worker = None

    holder.start = start
    holder.stop = stop
    await start()
    try:
        yield holder
    finally:
        await stop()
        executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Api:
    base_url: str
    http: httpx.AsyncClient
    settings: Settings
    app: Any = None  # the running FastAPI app (its ``state.services``)

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def wait_status(self, request_id: str, statuses: set[str], timeout: float = 20) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            answer = await self.admin("GET", f"/v1/requests/{request_id}")
            detail = answer.json()
            if detail.get("status") in statuses:
                return detail
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"request stuck: {detail.get('status')} {detail}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def serve_api(
    settings: Settings,
    tracer_provider: TracerProvider | None = None,
    *,
    uvicorn_logs_to_root: bool = False,
) -> AsyncIterator[Api]:
    """Run the real app under uvicorn on ``settings.careflow_api_port`` (traced to
    ``tracer_provider`` when given). With ``uvicorn_logs_to_root`` uvicorn keeps no log config
    of its own: its records (such as ``Exception in ASGI application``) reach the root logger,
    where ``caplog`` sees them."""
    app = create_app(settings, tracer_provider)
    logging_options: dict[str, Any] = (
        {"log_config": None} if uvicorn_logs_to_root else {"log_level": "warning"}
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.careflow_api_port,
            lifespan="on",
            **logging_options,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    base_url = f"http://127.0.0.1:{settings.careflow_api_port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield Api(base_url=base_url, http=http, settings=settings, app=app)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async with serve_api(settings) as running:
        yield running
