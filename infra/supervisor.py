"""A small process supervisor for ``make run``: start children, restart one that dies.

Each child runs in its own session (Ctrl-C reaches only the supervisor, which then stops the
children in reverse start order). A child that exits while the stack runs is started again with
the same command line (so the Temporal dev server reuses its SQLite file and ports) after an
exponential backoff — ``first_backoff`` seconds, doubled for each exit that follows a short run,
at most ``max_backoff``; a child that ran ``stable_after`` seconds starts over at
``first_backoff``. Each exit is one log line naming the component, its exit code (or signal)
and when the next attempt is.

Stopping is not interruptible: ``handle_stop_signals`` turns SIGINT, SIGTERM and SIGHUP (a
closed terminal) into ``KeyboardInterrupt``, and ``stop_all`` ignores all three while it stops
the children (a second Ctrl-C no longer abandons them), killing what does not stop in time.
Should the supervisor itself die without stopping them (SIGKILL, a crash), each child gets
SIGTERM from the kernel (Linux ``PR_SET_PDEATHSIG``, set between fork and exec): no orphans.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger("cli")


@dataclass
class Child:
    """One supervised component.

    Attributes:
        name: what the log lines call it (``worker``, ``API``, ``Temporal dev server``).
        command: its command line, the same on every restart.
        process: the running process, or None while waiting to restart.
        started_at: ``time.monotonic()`` of the last start.
        quick_exits: exits in a row after runs shorter than ``stable_after``.
        restart_at: ``time.monotonic()`` of the next start while waiting, else None.
        restarts: how many times it was restarted.
    """

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    restarts: int = field(default=0)


def exit_description(returncode: int) -> str:
    """``exit code 1`` or ``exit code -9 (SIGKILL)`` for a child killed by a signal."""
    if returncode < 0:
        try:
            return f"exit code {returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"exit code {returncode}"
    return f"exit code {returncode}"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def handle_stop_signals() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in the main thread (also
    when started from a shell that ignores SIGINT)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.default_int_handler)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when its parent dies (Linux);
    None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class Supervisor:
    """Starts children and keeps them running until ``stop_all``.

    Args:
        env: the children's environment.
        first_backoff: seconds before the first restart of a child.
        max_backoff: the longest wait between restarts, in seconds.
        stable_after: seconds of running after which a child's backoff starts over.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        first_backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 30.0,
    ) -> None:
        self._env = dict(env)
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._stable_after = stable_after
        self.children: list[Child] = []

    def start(self, name: str, command: list[str]) -> Child:
        """Start a new child and supervise it from now on."""
        child = Child(name=name, command=command)
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.command, env=self._env, start_new_session=True, preexec_fn=_die_with_parent()
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    def backoff(self, quick_exits: int) -> float:
        """Seconds to wait after the ``quick_exits``-th exit in a row (1, 2, 4, … capped)."""
        exponent = min(max(quick_exits - 1, 0), 30)
        return float(min(self._max_backoff, self._first_backoff * 2**exponent))

    def check(self) -> None:
        """One round: note children that exited (one log line each), restart those due."""
        now = time.monotonic()
        for child in self.children:
            if child.process is not None:
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started_at
                child.quick_exits = 1 if ran >= self._stable_after else child.quick_exits + 1
                delay = self.backoff(child.quick_exits)
                child.process = None
                child.restart_at = now + delay
                log.warning(
                    "%s exited (%s) after %.0f s; restarting it in %.3g s (attempt %d)",
                    child.name,
                    exit_description(code),
                    ran,
                    delay,
                    child.restarts + 1,
                )
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
                assert child.process is not None
                log.info("%s restarted (pid %d)", child.name, child.process.pid)

    def run_forever(self, poll_seconds: float = 0.5) -> None:
        """Check the children until interrupted (KeyboardInterrupt from Ctrl-C or SIGTERM)."""
        while True:
            self.check()
            time.sleep(poll_seconds)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every child, newest first: SIGINT, then SIGKILL after ``timeout`` seconds.

        SIGINT, SIGTERM and SIGHUP are ignored meanwhile (when called from the main thread),
        so a second Ctrl-C or a closed terminal cannot interrupt it and leave children behind.
        """
        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS} if main else {}
        try:
            for child in reversed(self.children):
                child.restart_at = None
                process = child.process
                if process is None:
                    continue
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.3g s; killing it", child.name, timeout)
                    process.kill()
                    process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
