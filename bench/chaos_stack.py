"""The chaos bench's own stack: the Temporal dev server, the worker and the API as subprocesses.

Started exactly like ``make run`` starts them (``cli.dev_server_command``: SQLite file
with WAL pragmas, so the server survives a SIGKILL and a restart; ``python worker.py``;
``python -m uvicorn api.main:app``), but in a temporary data dir, on free loopback ports, with
its own task queue, admin token and a raised rate limit. Every process is started in its own
process group (killed as a group) and, on Linux, with ``PR_SET_PDEATHSIG`` so it dies with the
bench even if the bench itself is SIGKILLed. ``Stack.close`` kills whatever is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from careflow.settings import Settings
from cli import dev_server_command, prepare_namespace
from persistence.store import Store

REPO = Path(__file__).resolve().parent.parent
COMPONENTS = ("temporal", "worker", "api")

# Environment variables of the service that must not leak in from the caller's shell.
_SCRUB = (
    "DATABASE_URL",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_UI_URL",
    "CAREFLOW_PUBLIC_URL",
)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Stack:
    """One embedded stack in ``root`` (data dir ``root/data``, logs ``root/logs``).

    Args:
        root: an empty temporary directory.
        admin_token: the ``CAREFLOW_ADMIN_TOKEN``.
        rate_limit: ``CAREFLOW_RATE_LIMIT`` (raised: the bench measures loss, not the limiter).
        extra_env: more environment for the worker and the API.
    """

    def __init__(
        self,
        root: Path,
        *,
        admin_token: str,
        rate_limit: str = "100000/second",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.logs_dir = root / "logs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        temporal_port, ui_port, api_port, metrics_port = free_ports(4)
        self.metrics_port = metrics_port
        self.settings = Settings(
            careflow_admin_token=admin_token,
            careflow_data_dir=self.data_dir,
            careflow_api_host="127.0.0.1",
            careflow_api_port=api_port,
            careflow_task_queue="chaos",
            temporal_address=f"127.0.0.1:{temporal_port}",
            temporal_ui_port=ui_port,
            careflow_rate_limit=rate_limit,
            _env_file=None,  # type: ignore[call-arg]
        )
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(
            {
                "CAREFLOW_DATA_DIR": str(self.data_dir),
                "CAREFLOW_API_HOST": "127.0.0.1",
                "CAREFLOW_API_PORT": str(api_port),
                "CAREFLOW_ADMIN_TOKEN": admin_token,
                "CAREFLOW_TASK_QUEUE": self.settings.careflow_task_queue,
                "CAREFLOW_RATE_LIMIT": rate_limit,
                "TEMPORAL_ADDRESS": self.settings.temporal_address,
                "TEMPORAL_UI_PORT": str(ui_port),
                "PYTHONUNBUFFERED": "1",
                **(extra_env or {}),
            }
        )
        self.env = env
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.starts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)
        self.kills: list[dict[str, object]] = []

    # --- processes ---------------------------------------------------------------------------

    def _argv(self, name: str) -> list[str]:
        if name == "temporal":
            return [*dev_server_command(self.settings), "--metrics-port", str(self.metrics_port)]
        if name == "worker":
            return [sys.executable, "worker.py"]
        if name == "api":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.settings.careflow_api_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
        raise ValueError(name)

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def spawn(self, name: str) -> None:
        """Start one component (must not be running)."""
        assert name not in self.procs or self.procs[name].poll() is not None, name
        if name not in self._logs:
            self._logs[name] = open(self.log_path(name), "ab")  # noqa: SIM115 - closed in close()
        log = self._logs[name]
        log.write(f"\n===== start #{self.starts[name] + 1} at {time.time():.3f}\n".encode())
        log.flush()
        self.procs[name] = subprocess.Popen(
            self._argv(name),
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        self.starts[name] += 1

    def kill(self, name: str) -> None:
        """SIGKILL one component (its whole process group) and reap it."""
        proc = self.procs[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def unexpected_exits(self) -> list[str]:
        """Components that exited without being killed by the bench."""
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def close(self) -> None:
        """Stop everything still running: SIGTERM, then SIGKILL after 5 s; close the logs."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        for log in self._logs.values():
            log.close()

    # --- readiness ---------------------------------------------------------------------------

    async def wait_temporal(self, timeout: float = 60) -> None:
        """Temporal answers; search attributes and retention are in place (idempotent)."""
        await prepare_namespace(self.settings, timeout=timeout)

    async def wait_api(self, timeout: float = 60) -> None:
        """``/readyz`` answers 200 (database and Temporal reachable from the API)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.api_url, timeout=3) as http:
            while True:
                self._check_alive("api")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not become ready")
                await asyncio.sleep(0.1)

    async def wait_worker(self, timeout: float = 60) -> None:
        """The worker logged that it polls (in its current start)."""
        deadline = time.monotonic() + timeout
        marker = f"===== start #{self.starts['worker']} at".encode()
        while True:
            self._check_alive("worker")
            text = self.log_path("worker").read_bytes()
            tail = text[text.rfind(marker) :] if marker in text else b""
            if b"worker polling task queue" in tail:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not start polling")
            await asyncio.sleep(0.1)

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_path(name)}")

    async def start(self) -> None:
        """Migrate the app database, then Temporal, the worker and the API (like ``make run``)."""
        store = Store(self.settings.sqlalchemy_url)
        try:
            await asyncio.to_thread(store.migrate)
        finally:
            store.dispose()
        self.spawn("temporal")
        await self.wait_temporal()
        self.spawn("worker")
        self.spawn("api")
        await asyncio.gather(self.wait_worker(), self.wait_api())

    async def wait_ready(self, name: str, timeout: float = 60) -> None:
        if name == "temporal":
            await self.wait_temporal(timeout)
        elif name == "worker":
            await self.wait_worker(timeout)
        else:
            await self.wait_api(timeout)

    async def kill_and_restart(self, name: str, down_seconds: float, at: float) -> None:
        """SIGKILL ``name``, keep it down ``down_seconds``, start it again, wait until ready.

        ``at`` is the bench clock's start (for the kill log's relative times).
        """
        killed_at = time.monotonic()
        self.kill(name)
        await asyncio.sleep(down_seconds)
        self.spawn(name)
        await self.wait_ready(name)
        self.kills.append(
            {
                "component": name,
                "killed_at_s": round(killed_at - at, 2),
                "ready_after_s": round(time.monotonic() - killed_at, 2),
            }
        )

    def temporal_log_lines(self, *needles: str) -> dict[str, int]:
        """How many lines of the Temporal server's log contain each needle."""
        path = self.log_path("temporal")
        text = path.read_text(errors="replace") if path.exists() else ""
        return {n: sum(1 for line in text.splitlines() if n in line) for n in needles}
