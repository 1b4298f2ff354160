"""The benches' process supervision, on real child processes (no Temporal or API started)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bench.procs import cpu_seconds, free_ports, rss_mb
from bench.stack import Stack

# Prints a line, then waits; on SIGINT prints "bye" and exits 0 (like a component stopping).
POLITE = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *_: (print('bye', flush=True), sys.exit(0)))\n"
    "print('polling task queue', flush=True)\n"
    "time.sleep(60)\n"
)
# Starts a grandchild (a sleep) in its process group, then waits.
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path, task_queue="bench-test", rate_limit="10/second")
    yield stack
    stack.stop_all()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def wait_until(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(4)
    assert len(set(ports)) == 4
    assert all(1024 < port < 65536 for port in ports)


def test_cpu_seconds_and_rss_of_a_live_and_a_missing_process() -> None:
    sum(i * i for i in range(200_000))  # some CPU time of our own
    assert cpu_seconds(os.getpid()) > 0
    assert 1 < rss_mb(os.getpid()) < 100_000
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0
    assert rss_mb(gone.pid) == 0.0
    assert cpu_seconds(None) == 0.0


def test_components_get_the_stacks_settings_not_the_callers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREFLOW_PUBLIC_URL", "https://leak.example")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret")
    monkeypatch.setenv("BENCH_KEEP", "1")
    env = stack.env("other-queue")
    assert not {"CAREFLOW_PUBLIC_URL", "TEMPORAL_API_KEY", "BENCH_KEEP"} & set(env)
    assert env["CAREFLOW_TASK_QUEUE"] == "other-queue"
    assert stack.env()["CAREFLOW_TASK_QUEUE"] == "bench-test"
    assert env["TEMPORAL_ADDRESS"] == stack.settings.temporal_address
    assert env["CAREFLOW_ADMIN_TOKEN"] == stack.admin_token
    assert env["DATABASE_URL"] == f"sqlite:///{(stack.data_dir / 'careflow.db').resolve()}"
    assert env["CAREFLOW_RATE_LIMIT"] == "10/second"
    ports = {stack.settings.careflow_api_port, stack.settings.temporal_ui_port}
    assert len(ports | {int(stack.settings.temporal_address.rpartition(":")[2])}) == 3


def test_stop_interrupts_and_the_exit_is_expected(stack: Stack) -> None:
    proc = stack.spawn("worker", python(POLITE))
    wait_until(lambda: "polling" in proc.log_text())
    assert proc.log.parent == stack.logs
    stack.stop(proc)
    assert not proc.alive() and proc.popen.returncode == 0
    assert "bye" in proc.log_text()
    assert stack.unexpected_exits() == []


def test_kill_takes_the_whole_process_group(stack: Stack) -> None:
    proc = stack.spawn("api", python(PARENT))
    wait_until(lambda: proc.log_text().strip())
    grandchild = psutil.Process(int(proc.log_text().split()[0]))
    stack.kill("api")
    assert not proc.alive() and proc.popen.returncode == -9
    grandchild.wait(timeout=10)  # gone too: psutil.TimeoutExpired if it outlived the kill
    assert stack.unexpected_exits() == []


def test_an_exit_on_its_own_is_unexpected_and_logs_add_up_over_restarts(stack: Stack) -> None:
    first = stack.spawn("worker", python("print('start one'); print('error: x')"))
    first.popen.wait()
    second = stack.spawn("worker", python("print('start two'); print('error: y')"))
    second.popen.wait()
    assert stack.current("worker") is second
    assert stack.unexpected_exits() == [first, second]
    assert stack.log_text("worker") == "start one\nerror: x\nstart two\nerror: y\n"
    assert stack.log_lines("worker", "error:") == 2
    assert stack.restarts(["worker", "api"]) == {"worker": 1, "api": 0}
    assert first.tail(1) == "error: x"


async def test_wait_for_returns_when_true_and_fails_when_the_process_dies(stack: Stack) -> None:
    proc = stack.spawn("worker", python(POLITE))

    async def polling() -> bool:
        return "polling task queue" in proc.log_text()

    before = time.time()
    assert before <= await stack.wait_for(proc, polling, "polling", timeout=10) <= time.time()
    stack.stop(proc)

    async def never() -> bool:
        return False

    with pytest.raises(RuntimeError, match="worker exited while waiting for never"):
        await stack.wait_for(proc, never, "never", timeout=10)
    dead_slow = stack.spawn("api", python("import time; time.sleep(60)"))
    with pytest.raises(RuntimeError, match="api: no readiness after 0s"):
        await stack.wait_for(dead_slow, never, "readiness", timeout=0.1)
