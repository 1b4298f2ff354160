"""Load generator of ``bench/run.py``, run as a separate process so that generating load never
shares an interpreter (or a GIL) with what is measured.

Modes (one per process; the last stdout line is a JSON object with the figures):

- ``raw``: workflow starts from a plain Temporal client, ``--concurrency`` at a time, for
  ``--warmup`` + ``--duration`` seconds; ``--shape minimal`` starts a workflow with no input,
  ``--shape ingest`` starts what the ingest handler starts (the same input model with the body,
  the same search attributes and static summary, the pydantic data converter).
- ``closed``: HTTP POSTs of ``--body`` to ``--url``, ``--concurrency`` at a time (each waits for its
  answer before sending again), for ``--warmup`` + ``--duration`` seconds, or ``--count`` requests.
  One keep-alive connection per concurrent sender, with a lean HTTP/1.1 client (``Connection``)
  rather than httpx (``--client httpx``), which costs ~5 ms of CPU per request: on 2 cores that
  would be taken from the API and the server and counted against the ingest path.
- ``open``: HTTP POSTs at a fixed rate (``--rate`` per second) for ``--warmup`` + ``--duration``
  seconds, sent on schedule whatever the answers; latency is measured from the scheduled send
  time, so a stalled server cannot hide queueing (no coordinated omission).

Only the measured window counts (completions between the end of the warm-up and the end).
The lines ``MARK start`` and ``MARK end`` are printed when the window opens and closes, so the
parent can sample the CPU time of the server processes over exactly that window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_IN_FLIGHT_OPEN = 2000  # open loop: beyond this many unanswered requests, count drops
KEEP_ALIVE_SECONDS = 4.0  # reuse an idle connection only this long (uvicorn's timeout is 5 s)
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench.starts (raw mode)


def mark(what: str) -> None:
    print(f"MARK {what}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Window:
    """Counts completions inside [start + warmup, start + warmup + duration]."""

    def __init__(self, warmup: float, duration: float) -> None:
        self.start = time.perf_counter()
        self.opens = self.start + warmup
        self.closes = self.opens + duration
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.cpu_open = 0.0
        self.cpu_close = 0.0

    def count(self, outcome: str) -> None:
        now = time.perf_counter()
        if self.opens <= now <= self.closes:
            if outcome == "ok":
                self.ok += 1
            else:
                self.errors[outcome] += 1

    async def marks(self) -> None:
        await asyncio.sleep(max(0.0, self.opens - time.perf_counter()))
        self.cpu_open = time.process_time()
        mark("start")
        await asyncio.sleep(max(0.0, self.closes - time.perf_counter()))
        self.cpu_close = time.process_time()
        mark("end")

    def result(self, **extra: Any) -> dict[str, Any]:
        seconds = self.closes - self.opens
        return {
            "ok": self.ok,
            "errors": dict(self.errors),
            "seconds": seconds,
            "rate": self.ok / seconds if seconds > 0 else 0.0,
            "load_cpu_s": self.cpu_close - self.cpu_open,
            **extra,
        }


# --- raw workflow starts ---------------------------------------------------------------------


async def raw(args: argparse.Namespace) -> dict[str, Any]:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from bench.starts import start_like_ingest

    client = await Client.connect(
        args.address, namespace=args.namespace, data_converter=pydantic_data_converter
    )
    body = Path(args.body).read_bytes() if args.body else b"{}"

    async def start_one() -> None:
        workflow_id = "bench_" + uuid.uuid4().hex
        if args.shape == "minimal":
            await client.start_workflow(args.workflow, id=workflow_id, task_queue=args.task_queue)
            return
        await start_like_ingest(
            client,
            args.workflow,
            request_id=workflow_id,
            webhook_id=args.webhook_id,
            body=body,
            task_queue=args.task_queue,
        )

    window = Window(args.warmup, args.duration)

    async def loop() -> None:
        while time.perf_counter() < window.closes:
            try:
                await start_one()
                window.count("ok")
            except Exception as exc:  # counted, never fatal: the figure says how many failed
                window.count(type(exc).__name__)

    marker = asyncio.create_task(window.marks())
    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    await marker
    return window.result()


# --- HTTP ------------------------------------------------------------------------------------


class Connection:
    """A lean HTTP/1.1 keep-alive connection: one pre-built request, answers parsed for their
    status code. It costs the generator a fraction of a CPU millisecond per request, where httpx
    costs about 5 ms: on a 2-core machine the load generator must not eat the server's CPU."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.idle_since = 0.0

    def reusable(self) -> bool:
        """Like any HTTP client's pool: never send on a connection the server closed, or is
        about to close (uvicorn closes keep-alive connections idle for 5 s)."""
        if self.reader is None or self.reader.at_eof():
            return False
        return time.monotonic() - self.idle_since < KEEP_ALIVE_SECONDS

    async def post(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await self.reader.readexactly(int(headers["content-length"]))
            if headers.get("connection", "").lower() == "close":
                self.close()
            return status
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Poster:
    """POSTs ``body`` to ``url`` with the lean client (default) or httpx (``--client httpx``)."""

    def __init__(self, url: str, body: bytes, client: str, connections: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.url, self.body, self.client = url, body, client
        self.request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.idle: list[Connection] = []
        self.http: Any = None
        if client == "httpx":
            import httpx

            self.http = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0),
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            )

    async def post(self) -> int:
        if self.http is not None:
            answer = await self.http.post(
                self.url, content=self.body, headers={"Content-Type": "application/json"}
            )
            return int(answer.status_code)
        connection = None
        while self.idle and connection is None:
            connection = self.idle.pop()
            if not connection.reusable():
                connection.close()
                connection = None
        if connection is None:
            connection = Connection(self.host, self.port, self.request)
        status = await asyncio.wait_for(connection.post(), timeout=30)
        if connection.writer is not None:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        return status

    async def aclose(self) -> None:
        for connection in self.idle:
            connection.close()
        if self.http is not None:
            await self.http.aclose()


async def closed(args: argparse.Namespace) -> dict[str, Any]:
    body = Path(args.body).read_bytes()
    # Several --url (API processes of the scaled topology): sender i posts to url i mod n.
    posters = [Poster(url, body, args.client, args.concurrency) for url in args.url]
    try:
        if args.count:
            # A fixed number of requests (used to enqueue work); every answer counts.
            remaining = args.count
            statuses: Counter[str] = Counter()
            started = time.perf_counter()

            async def send_some(poster: Poster) -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    try:
                        statuses[str(await poster.post())] += 1
                    except Exception as exc:
                        statuses[type(exc).__name__] += 1

            await asyncio.gather(
                *(send_some(posters[i % len(posters)]) for i in range(args.concurrency))
            )
            seconds = time.perf_counter() - started
            ok = statuses.pop("202", 0)
            return {"ok": ok, "errors": dict(statuses), "seconds": seconds, "rate": ok / seconds}

        window = Window(args.warmup, args.duration)

        async def loop(poster: Poster) -> None:
            while time.perf_counter() < window.closes:
                try:
                    status = await poster.post()
                    window.count("ok" if status == 202 else str(status))
                except Exception as exc:
                    window.count(type(exc).__name__)

        marker = asyncio.create_task(window.marks())
        await asyncio.gather(*(loop(posters[i % len(posters)]) for i in range(args.concurrency)))
        await marker
        return window.result()
    finally:
        for poster in posters:
            await poster.aclose()


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    poster = Poster(args.url[0], Path(args.body).read_bytes(), args.client, MAX_IN_FLIGHT_OPEN)
    window = Window(args.warmup, args.duration)
    latencies: list[float] = []
    in_flight = 0
    dropped = 0
    tasks: set[asyncio.Task[None]] = set()

    async def send(scheduled: float) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            status = await poster.post()
            outcome = "ok" if status == 202 else str(status)
        except Exception as exc:
            outcome = type(exc).__name__
        finally:
            in_flight -= 1
        done = time.perf_counter()
        if window.opens <= scheduled <= window.closes:
            if outcome == "ok":
                window.ok += 1
                latencies.append((done - scheduled) * 1000)
            else:
                window.errors[outcome] += 1

    try:
        marker = asyncio.create_task(window.marks())
        interval = 1.0 / args.rate
        total = int((args.warmup + args.duration) * args.rate)
        for i in range(total):
            scheduled = window.start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= MAX_IN_FLIGHT_OPEN:
                dropped += 1
                continue
            task = asyncio.create_task(send(scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await marker
        if tasks:
            await asyncio.wait(tasks, timeout=35)
    finally:
        await poster.aclose()
    return window.result(
        target_rate=args.rate,
        dropped=dropped,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=0.0),
        mean_ms=statistics.fmean(latencies) if latencies else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["raw", "closed", "open"])
    parser.add_argument("--address")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue")
    parser.add_argument("--workflow", default="BenchMinimalWorkflow")
    parser.add_argument("--shape", choices=["minimal", "ingest"], default="minimal")
    parser.add_argument("--webhook-id", default="wh_bench_raw")
    parser.add_argument("--url", action="append", default=[], help="repeat: round-robin")
    parser.add_argument("--body")
    parser.add_argument("--client", choices=["lean", "httpx"], default="lean")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    runner = {"raw": raw, "closed": closed, "open": open_loop}[args.mode]
    result = asyncio.run(runner(args))
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # Skip interpreter finalization: the Temporal client's Rust threads can still call into
    # Python while it tears down, which aborts the process (exit -6) after the figures are out.
    os._exit(0)


if __name__ == "__main__":
    main()
