"""The chaos bench's load: a webhook sender that retries like a real one, and the two scenarios.

- ``send_with_chaos``: deliveries paced over ``Scale.load_seconds`` while the worker, the API and
  the Temporal dev server are SIGKILLed and restarted, once each, at fractions of the sends.
- ``send_burst``: every delivery's first attempt released at once.

A ``Delivery`` keeps its own ``webhook-id`` on every attempt; a failed (5xx, 429, connection
error) or timed-out attempt is retried with exponential backoff and jitter (``Retry-After``
honoured); a 4xx answer is final. Sizes are ``SCALES`` / ``BURST`` by ``scale_name()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.chaos_report import drain
from bench.stack import Stack

SYSTEM = "urn:careflow:chaos:mrn"

# The sender: per-attempt timeout, backoff from 0.5 s doubling to 8 s (full jitter on the upper
# half), Retry-After honoured up to 10 s, at most 12 attempts and 180 s per delivery.
ATTEMPT_TIMEOUT = 10.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 10.0
MAX_ATTEMPTS = 12
DELIVERY_SECONDS = 180.0
CONNECTIONS_PER_CLIENT = 50


@dataclass(frozen=True)
class Scale:
    """One size of the chaos run: ``requests`` sent at most ``concurrency`` at a time."""

    requests: int
    concurrency: int
    load_seconds: float  # the chaos run paces its sends over this long
    kill_at: tuple[float, float, float]  # fraction of sends launched: worker, api, temporal
    down_seconds: float
    identifier_pool: int = 50  # distinct patient identifiers; several requests share each
    # Kill only once everything sent so far is terminal (the worker idle): no activity or
    # workflow task is caught in flight, whose timeouts (30 s / 10 s) would outlast the smoke
    # run's budget. Sends resume the moment the component is killed, so they still meet it down.
    quiesce: bool = False


SCALES = {
    "full": Scale(1000, 64, 30.0, (0.2, 0.45, 0.7), 2.0),
    "quick": Scale(300, 32, 15.0, (0.2, 0.45, 0.7), 2.0),
    "smoke": Scale(36, 12, 9.0, (0.15, 0.45, 0.75), 1.0, identifier_pool=12, quiesce=True),
}
BURST = {"full": 2000, "quick": 1000, "smoke": 200}


def scale_name() -> str:
    """``smoke`` (``CHAOS_SMOKE=1``), ``quick`` (``CHAOS_QUICK=1``) or ``full``."""
    if os.environ.get("CHAOS_SMOKE") == "1":
        return "smoke"
    if os.environ.get("CHAOS_QUICK") == "1":
        return "quick"
    return "full"


@dataclass
class Delivery:
    """One webhook delivery and what became of it.

    ``first_answer_s`` counts from its first attempt, ``acknowledged_s`` from the sender's clock.
    """

    seq: int
    delivery_id: str
    mrn: str
    body: bytes
    attempts: int = 0
    outcome: str = "pending"  # acknowledged | refused | gave_up
    status_code: int | None = None
    request_id: str | None = None
    first_answer_s: float | None = None
    acknowledged_s: float | None = None


@dataclass
class LeanAnswer:
    """An HTTP answer: status code, headers (lower-case names), body."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


async def lean_post(url: str, body: bytes, headers: dict[str, str]) -> LeanAnswer:
    """POST ``body`` to ``url`` on a fresh HTTP/1.1 connection (closed after the answer).

    Raises:
        OSError: the connection failed or broke; ``asyncio.IncompleteReadError``: it closed
            before a whole answer.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        answer_headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                answer_headers[name.strip().lower()] = value.strip()
        length = int(answer_headers.get("content-length", "0"))
        content = await reader.readexactly(length)
        return LeanAnswer(int(lines[0].split(" ", 2)[1]), answer_headers, content)
    finally:
        writer.close()


@dataclass
class Sender:
    """A webhook sender that retries like a real one (same ``webhook-id`` on every attempt)."""

    clients: list[httpx.AsyncClient]  # delivery ``seq`` uses ``clients[seq % len(clients)]``
    url: str
    clock: float
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    # The same path on other API processes (the scaled topology): attempt ``a`` of delivery
    # ``seq`` goes to ``[url, *mirrors][(seq + a) % n]``, round-robin, so a resend after an
    # API process died goes to another one.
    mirrors: list[str] = field(default_factory=list)
    # Send with ``lean_post`` (a fresh connection per attempt, a fraction of a CPU millisecond)
    # instead of ``clients``: 2,000 senders on httpx (~5 ms of CPU each) in this one process
    # would make the sender, not the API, what a burst's first answers wait for.
    lean: bool = False

    async def _post(self, d: Delivery, url: str, headers: dict[str, str]) -> LeanAnswer:
        if self.lean:
            return await lean_post(url, d.body, headers)
        http = self.clients[d.seq % len(self.clients)]
        answer = await http.post(url, content=d.body, headers=headers)
        return LeanAnswer(answer.status_code, dict(answer.headers), answer.content)

    async def deliver(self, d: Delivery) -> None:
        """Attempt ``d`` until acknowledged (2xx), refused (other 4xx) or out of attempts/time."""
        headers = {"Content-Type": "application/json", "webhook-id": d.delivery_id}
        started = time.monotonic()
        for attempt in range(MAX_ATTEMPTS):
            d.attempts = attempt + 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT + 2):
                    urls = [self.url, *self.mirrors]
                    url = urls[(d.seq + attempt) % len(urls)]
                    answer = await self._post(d, url, headers)
            except (TimeoutError, httpx.TimeoutException):
                self.answers["timeout"] += 1
            except (httpx.ConnectError, ConnectionRefusedError):
                self.answers["connect_error"] += 1
            except (httpx.TransportError, OSError, asyncio.IncompleteReadError) as exc:
                # reset / closed mid-request (API killed)
                self.answers[f"transport_error:{type(exc).__name__}"] += 1
            else:
                key = str(answer.status_code)
                if answer.status_code >= 500 or answer.status_code == 429:
                    with contextlib.suppress(Exception):
                        key += ":" + answer.json()["errors"][0]["code"]
                    with contextlib.suppress(TypeError, ValueError):
                        retry_after = float(answer.headers.get("retry-after"))  # type: ignore[arg-type]
                self.answers[key] += 1
                if d.first_answer_s is None:
                    d.first_answer_s = time.monotonic() - started
                if 200 <= answer.status_code < 300:
                    d.outcome = "acknowledged"
                    d.status_code = answer.status_code
                    d.request_id = answer.json()["request_id"]
                    d.acknowledged_s = time.monotonic() - self.clock
                    return
                if answer.status_code < 500 and answer.status_code != 429:
                    d.outcome = "refused"  # a 4xx verdict: final, a sender does not resend
                    d.status_code = answer.status_code
                    return
            if time.monotonic() - started > DELIVERY_SECONDS:
                break
            wait = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
            wait = wait / 2 + random.uniform(0, wait / 2)
            if retry_after is not None:  # not before Retry-After; jittered, so no herd
                wait = max(wait, min(retry_after, RETRY_AFTER_CAP) + random.uniform(0, 1))
            await asyncio.sleep(wait)
        d.outcome = "gave_up"


def make_deliveries(count: int, run: str, pool: int) -> list[Delivery]:
    """``count`` deliveries ``{run}-{seq:05d}``; delivery ``seq`` carries ``MRN-{seq % pool}``.

    Each JSON body holds ``seq``, the patient (``SYSTEM``, the MRN, a family name) and a
    200-character note.
    """
    deliveries = []
    for seq in range(count):
        mrn = f"MRN-{seq % pool:04d}"
        body = {
            "seq": seq,
            "patient": {"system": SYSTEM, "value": mrn, "name": {"family": f"Chaos{seq % 7}"}},
            "note": "x" * 200,
        }
        deliveries.append(Delivery(seq, f"{run}-{seq:05d}", mrn, json.dumps(body).encode()))
    return deliveries


async def send_with_chaos(
    sender: Sender, deliveries: list[Delivery], scale: Scale, stack: Stack, clock: float
) -> None:
    """Paced sends (``scale.load_seconds``); kills worker, API, Temporal at their thresholds."""
    gate = asyncio.Semaphore(scale.concurrency)
    launched = 0
    progress = asyncio.Event()
    resume = asyncio.Event()
    resume.set()
    tasks: list[asyncio.Task[None]] = []

    async def one(d: Delivery) -> None:
        async with gate:
            await sender.deliver(d)

    async def quiesce() -> None:
        resume.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        acked = [d.request_id for d in deliveries if d.request_id]
        async with stack.admin_client(timeout=10) as admin:
            await drain(admin, acked, 20)

    async def chaos() -> None:
        for name, fraction in zip(("worker", "api", "temporal"), scale.kill_at, strict=True):
            while launched < fraction * len(deliveries):
                progress.clear()
                await progress.wait()
            if scale.quiesce:
                await quiesce()
            restart = asyncio.create_task(stack.kill_and_restart(name, scale.down_seconds, clock))
            await asyncio.sleep(0)  # the kill happens before the sends resume
            resume.set()
            await restart

    chaos_task = asyncio.create_task(chaos())
    start = time.monotonic()
    interval = scale.load_seconds / len(deliveries)
    try:
        for i, d in enumerate(deliveries):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not resume.is_set():
                paused = time.monotonic()
                await resume.wait()
                start += time.monotonic() - paused
            launched = i
            progress.set()
            tasks.append(asyncio.create_task(one(d)))
        launched = len(deliveries)
        progress.set()
        await asyncio.gather(*tasks)
        await asyncio.wait_for(chaos_task, timeout=120)
    finally:
        for task in (*tasks, chaos_task):
            task.cancel()
        await asyncio.gather(*tasks, chaos_task, return_exceptions=True)


async def send_burst(sender: Sender, deliveries: list[Delivery]) -> None:
    """Every delivery at once: all first attempts released together."""
    go = asyncio.Event()

    async def one(d: Delivery) -> None:
        await go.wait()
        await sender.deliver(d)

    tasks = [asyncio.create_task(one(d)) for d in deliveries]
    await asyncio.sleep(0.2)
    go.set()
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
