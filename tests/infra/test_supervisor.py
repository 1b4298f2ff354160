"""``infra/supervisor.py``: a child that exits is started again after an exponential backoff,
with one log line naming it, its exit code and the wait; ``stop_all`` stops every child."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.supervisor import Supervisor, exit_description


def test_backoff_doubles_up_to_the_cap() -> None:
    supervisor = Supervisor({}, first_backoff=1, max_backoff=30)
    assert [supervisor.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_exit_descriptions_name_the_signal() -> None:
    assert exit_description(3) == "exit code 3"
    assert exit_description(-9) == "exit code -9 (SIGKILL)"


def test_a_child_that_exits_is_restarted_with_backoff_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cli")
    supervisor = Supervisor(dict(os.environ), first_backoff=0.2, max_backoff=0.4)
    child = supervisor.start("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    steady = supervisor.start("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    steady_pid = steady.process.pid if steady.process else None
    try:
        deadline = time.monotonic() + 30
        while child.restarts < 3 and time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.05)
        assert child.restarts >= 3
        exits = [
            r.getMessage() for r in caplog.records if r.getMessage().startswith("flaky exited")
        ]
        assert exits[0].startswith("flaky exited (exit code 3)")
        assert "restarting it in 0.2 s (attempt 1)" in exits[0]
        assert child.quick_exits >= 3 and supervisor.backoff(child.quick_exits) == 0.4
        assert steady.process is not None and steady.process.pid == steady_pid  # untouched
    finally:
        supervisor.stop_all(timeout=5)
    assert steady.process.poll() is not None


# A supervisor process as ``make run`` runs it: stop signals handled, one child that ignores
# SIGINT (so stopping it takes the whole ``timeout``), its pid printed for the test.
_SUPERVISOR = """
import sys, time
from infra.supervisor import Supervisor, handle_stop_signals
handle_stop_signals()
supervisor = Supervisor({"PATH": "/usr/bin:/bin"})
child = supervisor.start("stubborn", [sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)"])
print(child.process.pid, flush=True)
try:
    supervisor.run_forever(poll_seconds=0.05)
except KeyboardInterrupt:
    print("stopping", flush=True)
finally:
    supervisor.stop_all(timeout=2)
print("stopped", flush=True)
"""


def _gone(pid: int, within: float) -> bool:
    """True once ``pid`` no longer runs (exited or a zombie) within ``within`` seconds."""
    import psutil

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def supervised() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running supervisor process and its child's pid; both killed if still alive after."""
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    child = int(process.stdout.readline())
    time.sleep(0.3)  # the supervisor is in run_forever
    yield process, child
    for pid in (process.pid, child):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


@pytest.mark.parametrize("signals", [["SIGINT", "SIGINT", "SIGINT"], ["SIGHUP"], ["SIGTERM"]])
def test_stop_signals_stop_every_child_even_when_repeated(
    supervised: tuple[subprocess.Popen[str], int], signals: list[str]
) -> None:
    """A second Ctrl-C while stopping, or a closed terminal (SIGHUP), leaves no orphan: the
    child is killed after the stop timeout and the supervisor says it stopped."""
    process, child = supervised
    for name in signals:
        process.send_signal(getattr(signal, name))
        time.sleep(0.3)
    out, _ = process.communicate(timeout=30)
    assert out.splitlines() == ["stopping", "stopped"]
    assert _gone(child, within=5), "the child outlived the supervisor"


def test_children_die_with_a_killed_supervisor(
    supervised: tuple[subprocess.Popen[str], int],
) -> None:
    """SIGKILL gives the supervisor no chance to stop anything: the kernel SIGTERMs the child
    (``PR_SET_PDEATHSIG``)."""
    process, child = supervised
    process.kill()
    process.wait()
    assert _gone(child, within=10), "the child outlived the killed supervisor"
