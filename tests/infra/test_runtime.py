"""The worker's SDK runtime with its Prometheus endpoint; a busy or unset port leaves the worker
running without one (logged), never crashing it."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from careflow.settings import Settings
from infra.runtime import worker_runtime
from tests.conftest import free_port


def _settings(port: int | None) -> Settings:
    return Settings(careflow_worker_metrics_port=port, _env_file=None)  # type: ignore[call-arg]


def test_a_free_port_serves_metrics() -> None:
    port = free_port()
    runtime = worker_runtime(_settings(port))
    assert runtime is not None
    counter = runtime.metric_meter.create_counter("careflow_probe", "probe")
    counter.add(1, {"webhook_id": "wh_1"})
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'careflow_probe_total{service_name="temporal-core-sdk",webhook_id="wh_1"} 1' in text


@pytest.mark.parametrize("port", [None, 0])
def test_no_port_means_no_endpoint(port: int | None) -> None:
    assert worker_runtime(_settings(port)) is None


def test_a_busy_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="infra.runtime"):
            assert worker_runtime(_settings(port)) is None
    assert f"worker metrics endpoint 127.0.0.1:{port} not started" in caplog.text
