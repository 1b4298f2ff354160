"""Child processes of the benches: free ports, one component start (``Proc``), CPU and memory
readings, ``py-spy`` attached to a process, and stopping a process group (``bench/stack.py``)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def die_with_parent() -> None:
    """In the child, between fork and exec: get SIGKILL when the bench dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process, children excluded (0.0 when gone/None)."""
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    """Resident set size of a live process, in MiB (0.0 when there is no such process)."""
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0


@dataclass
class Proc:
    """One start of one component: its process, its own log file and its profiler, if any."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    profiler: subprocess.Popen[bytes] | None = None
    stopped: bool = False  # the stack stopped or killed it: its exit is expected
    port: int | None = None  # an API process's port

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of its log."""
        return "\n".join(self.log_text().splitlines()[-lines:])


def attach_py_spy(proc: Proc, profile_dir: Path) -> None:
    """``py-spy record`` (raw format, GIL samples, 100 Hz) on ``proc``, writing
    ``profile_dir/<name>-<pid>.txt`` when ``stop_proc`` stops it."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = profile_dir / f"{proc.name}-{proc.pid}.txt"
    proc.profiler = subprocess.Popen(
        [spy, "record", "--pid", str(proc.pid), "--gil", "--full-filenames", "--format", "raw"]
        + ["-r", "100"]
        + ["-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


def signal_group(proc: Proc, sig: signal.Signals) -> None:
    """Send ``sig`` to ``proc``'s whole process group (nothing when it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_proc(proc: Proc, timeout: float = 15.0) -> None:
    """Stop ``proc`` (its profiler first, so it writes its file): SIGINT, then SIGKILL after
    ``timeout`` seconds."""
    proc.stopped = True
    if proc.profiler is not None and proc.profiler.poll() is None:
        proc.profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.profiler.wait(timeout=30)
        if proc.profiler.poll() is None:
            proc.profiler.kill()
            proc.profiler.wait()
    if proc.alive():
        signal_group(proc, signal.SIGINT)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.popen.wait()
