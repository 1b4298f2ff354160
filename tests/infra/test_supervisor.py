"""``infra/supervisor.py``: a child that exits is started again after an exponential backoff,
with one log line naming it, its exit code and the wait; ``stop_all`` stops every child."""

from __future__ import annotations

import logging
import os
import sys
import time

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
