"""Chaos bench: nothing acknowledged is lost, nothing is done twice — while processes die.

``python bench/chaos.py`` (``make chaos``) starts its own stack (``bench/chaos_stack.py``: the
Temporal dev server on a SQLite file, ``python worker.py``, the API under uvicorn; temp data dir,
free loopback ports) and configures one webhook whose patient identifier comes from the payload
(a pool of 50 identifiers, so 20 requests share each patient). A load generator then sends 1,000
webhook requests like a real sender: every delivery has its own ``webhook-id``, and a failed
(5xx, 429, connection error) or timed-out attempt is retried with the same ``webhook-id``, with
exponential backoff and jitter (``Retry-After`` honoured). Meanwhile the run SIGKILLs and restarts
the worker, the API and the Temporal dev server, once each. After a drain of at most 5 minutes
it reads every acknowledged request back (``GET /v1/requests/{id}``) and the app database
(sqlite3, read only) and prints one JSON line (the last line of the output):

- ``acknowledged``: deliveries answered 2xx (202, or 200 for a resend the API had recorded);
- ``terminal``: acknowledged requests in SUCCESS / REJECTED / FAILED after the drain;
- ``lost``: acknowledged but unknown or not terminal after the drain;
- ``duplicate_care_flows``: care flows beyond one per request id, or per delivery (the payload's
  ``seq`` data point — a delivery processed under two request ids would show here);
- ``duplicate_patients``: patients beyond one per identifier (and patients without one);
- ``missing_care_flows`` (SUCCESS without its care flow), ``misattributed_care_flows`` (a care
  flow whose patient does not hold the delivery's identifier), ``unacknowledged`` (the sender
  gave up), the answers seen, the kills and timings.

``python bench/chaos.py burst`` (or ``CHAOS_BURST=1``) instead sends 2,000 requests at once
(2,000 concurrent connections, the same retrying sender) to a stack with the default settings
apart from the rate limit, and checks the same things.

Scale: ``CHAOS_QUICK=1`` sends 300 (burst: 1,000); ``CHAOS_SMOKE=1`` a few dozen and stays
within 45 s (the test ``tests/bench/test_chaos_smoke.py``). ``CHAOS_KEEP=1`` keeps the temp dir
(logs of every component). Exit status 0 when nothing was lost, duplicated or misattributed and
no component died on its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_stack import Stack  # noqa: E402

from careflow import request_ids  # noqa: E402

ADMIN_TOKEN = "chaos-admin-token"
SYSTEM = "urn:careflow:chaos:mrn"
TERMINAL = {"SUCCESS", "REJECTED", "FAILED"}
DRAIN_SECONDS = 300.0

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


@dataclass
class Delivery:
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
class Sender:
    """A webhook sender that retries like a real one (same ``webhook-id`` on every attempt)."""

    clients: list[httpx.AsyncClient]  # delivery ``seq`` uses ``clients[seq % len(clients)]``
    url: str
    clock: float
    answers: collections.Counter[str] = field(default_factory=collections.Counter)

    async def deliver(self, d: Delivery) -> None:
        headers = {"Content-Type": "application/json", "webhook-id": d.delivery_id}
        started = time.monotonic()
        for attempt in range(MAX_ATTEMPTS):
            d.attempts = attempt + 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT + 2):
                    http = self.clients[d.seq % len(self.clients)]
                    answer = await http.post(self.url, content=d.body, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                self.answers["timeout"] += 1
            except httpx.ConnectError:
                self.answers["connect_error"] += 1
            except httpx.TransportError as exc:  # reset / closed mid-request (API killed)
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


async def configure(http: httpx.AsyncClient) -> str:
    """Identifier system, a published definition (seq, mrn) and an enabled webhook: its id."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/identifier-systems",
            {"name": "chaos-mrn", "system": SYSTEM, "description": "chaos bench MRNs"},
        ),
        (
            "/v1/care-flow-definitions",
            {
                "id": "chaos",
                "title": "Chaos intake",
                "published": True,
                "data_point_definitions": [
                    {"id": "seq", "value_type": "number"},
                    {"id": "mrn", "value_type": "string"},
                ],
            },
        ),
        (
            "/v1/webhooks",
            {
                "name": "chaos feed",
                "care_flow_definition_id": "chaos",
                "data_point_mappings": [
                    {"data_point_definition_id": "seq", "path": "$.seq"},
                    {"data_point_definition_id": "mrn", "path": "$.patient.value"},
                ],
                "patient_identifier": {
                    "system_path": "$.patient.system",
                    "value_path": "$.patient.value",
                },
            },
        ),
    ]
    hook_id = ""
    for path, body in steps:
        answer = await http.post(path, json=body, headers=auth)
        answer.raise_for_status()
        hook_id = answer.json().get("id", "")
    answer = await http.post(f"/v1/webhooks/{hook_id}/enable", headers=auth)
    answer.raise_for_status()
    # The API's configuration cache refreshes every second: wait until the hook answers.
    deadline = time.monotonic() + 15
    while (await http.post(f"/hooks/{hook_id}/test", json={})).status_code == 404:
        if time.monotonic() > deadline:
            raise TimeoutError("the webhook did not become visible to the API")
        await asyncio.sleep(0.2)
    return hook_id


def count_care_flows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM care_flows").fetchone()[0])
    finally:
        conn.close()


async def drain(
    http: httpx.AsyncClient,
    request_ids: list[str],
    seconds: float,
    care_flows_db: Path | None = None,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Poll ``GET /v1/requests/{id}`` until every request is terminal or ``seconds`` pass.

    Returns:
        (the last detail, or ``{"status": "UNKNOWN"|"ERROR"}``, per request id; seconds taken)
    """
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    started = time.monotonic()
    latest: dict[str, dict[str, Any]] = {r: {"status": "UNKNOWN"} for r in request_ids}
    pending = set(request_ids)
    gate = asyncio.Semaphore(16)

    async def look(request_id: str) -> None:
        async with gate:
            try:
                answer = await http.get(f"/v1/requests/{request_id}", headers=auth, timeout=10)
            except httpx.HTTPError:
                latest[request_id] = {"status": "ERROR"}
                return
            if answer.status_code == 200:
                latest[request_id] = answer.json()
                if latest[request_id].get("status") in TERMINAL:
                    pending.discard(request_id)
            elif answer.status_code == 404:
                latest[request_id] = {"status": "UNKNOWN"}
            else:
                latest[request_id] = {"status": "ERROR", "http": answer.status_code}

    # Cheap first: wait on the app database until every request has its care flow (or the count
    # stalls for 30 s), so the drain's own status queries do not compete with the worker.
    if care_flows_db is not None:
        last, stalled_since = -1, time.monotonic()
        while time.monotonic() - started < seconds:
            count = await asyncio.to_thread(count_care_flows, care_flows_db)
            if count >= len(request_ids):
                break
            if count != last:
                last, stalled_since = count, time.monotonic()
            elif time.monotonic() - stalled_since > 30:
                break
            await asyncio.sleep(1.0)
    for _ in range(10_000):  # bounded by time below; the count is only a backstop
        await asyncio.gather(*(look(r) for r in sorted(pending)))
        if not pending or time.monotonic() - started > seconds:
            break
        await asyncio.sleep(1.0)
    return latest, time.monotonic() - started


def database_checks(db: Path, details: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Duplicates and attribution, from the app database (read only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        care_flows = conn.execute(
            "SELECT id, request_id, patient_id, json_extract(data_points, '$.seq'),"
            " json_extract(data_points, '$.mrn') FROM care_flows"
        ).fetchall()
        patients = conn.execute("SELECT id, anonymous FROM patients").fetchall()
        identifiers = conn.execute(
            "SELECT patient_id, system, value FROM patient_identifiers"
        ).fetchall()
    finally:
        conn.close()
    per_request = collections.Counter(r[1] for r in care_flows)
    per_seq = collections.Counter(r[3] for r in care_flows)
    duplicate_care_flows = sum(n - 1 for n in per_request.values() if n > 1) + sum(
        n - 1 for n in per_seq.values() if n > 1
    )
    patients_per_identifier: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    held_by: dict[str, set[str]] = collections.defaultdict(set)
    for patient_id, system, value in identifiers:
        patients_per_identifier[(system, value)].add(patient_id)
        held_by[patient_id].add(value)
    # Beyond one patient per identifier, plus patients holding no identifier at all.
    duplicate_patients = sum(len(p) - 1 for p in patients_per_identifier.values()) + sum(
        1 for patient_id, _ in patients if patient_id not in held_by
    )
    misattributed = sum(1 for r in care_flows if r[4] not in held_by.get(r[2], set()))
    by_request = {r[1]: r for r in care_flows}
    missing = sum(
        1
        for request_id, detail in details.items()
        if detail.get("status") == "SUCCESS"
        and (
            request_id not in by_request or by_request[request_id][0] != detail.get("care_flow_id")
        )
    )
    return {
        "care_flows": len(care_flows),
        "patients": len(patients),
        "identifiers": len(patients_per_identifier),
        "duplicate_care_flows": duplicate_care_flows,
        "duplicate_patients": duplicate_patients,
        "missing_care_flows": missing,
        "misattributed_care_flows": misattributed,
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOGFMT = re.compile(r'level=(\w+) msg="((?:[^"\\]|\\.)*)"')
_PYLOG = re.compile(r"\b(WARNING|WARN|ERROR|CRITICAL)\b\s+(.*)")


def log_summary(stack: Stack) -> dict[str, Any]:
    """The commonest warning/error messages per component log (evidence behind a bad run)."""
    summary: dict[str, Any] = {}
    for name in ("temporal", "worker", "api"):
        path = stack.log_path(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        messages: collections.Counter[str] = collections.Counter()
        for line in _ANSI.sub("", text).splitlines():
            found = _LOGFMT.search(line) or _PYLOG.search(line)
            if found and found.group(1).upper() not in ("INFO", "DEBUG"):
                messages[f"{found.group(1).lower()}: {found.group(2)[:90]}"] += 1
        summary[name] = dict(messages.most_common(8))
    return summary


def scale_name() -> str:
    if os.environ.get("CHAOS_SMOKE") == "1":
        return "smoke"
    if os.environ.get("CHAOS_QUICK") == "1":
        return "quick"
    return "full"


async def run(burst: bool) -> dict[str, Any]:
    scale = SCALES[scale_name()]
    root = Path(tempfile.mkdtemp(prefix="careflow-chaos-"))
    stack = Stack(root, admin_token=ADMIN_TOKEN)
    clock = time.monotonic()
    result: dict[str, Any] = {"mode": "burst" if burst else "chaos", "scale": scale_name()}
    try:
        await stack.start()
        result["stack_start_s"] = round(time.monotonic() - clock, 2)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as admin:
            hook_id = await configure(admin)
        if burst:
            count = BURST[scale_name()]
            concurrency = count
        else:
            count, concurrency = scale.requests, scale.concurrency
        deliveries = make_deliveries(
            count, f"{result['mode']}-{int(time.time())}", scale.identifier_pool
        )
        # httpcore's pool scans all its connections for every request (quadratic at 2,000
        # connections, which starved the event loop), so connections are spread over clients of
        # at most CONNECTIONS_PER_CLIENT each: ``concurrency`` connections in all.
        shards = math.ceil(concurrency / CONNECTIONS_PER_CLIENT)
        per_client = math.ceil(concurrency / shards)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        timeout = httpx.Timeout(ATTEMPT_TIMEOUT, pool=ATTEMPT_TIMEOUT * 2)
        load_started = time.monotonic()
        async with contextlib.AsyncExitStack() as clients:
            http = [
                await clients.enter_async_context(httpx.AsyncClient(limits=limits, timeout=timeout))
                for _ in range(shards)
            ]
            sender = Sender(http, f"{stack.api_url}/hooks/{hook_id}", load_started)
            if burst:
                await send_burst(sender, deliveries)
            else:
                await send_with_chaos(sender, deliveries, scale, stack, load_started)
        load_seconds = time.monotonic() - load_started
        acked = [d for d in deliveries if d.outcome == "acknowledged"]
        expected = {
            d.request_id: request_ids.request_id_for_delivery(hook_id, d.delivery_id) for d in acked
        }
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as admin:
            details, drain_seconds = await drain(
                admin,
                [d.request_id for d in acked if d.request_id],
                DRAIN_SECONDS,
                stack.data_dir / "careflow.db",
            )
        statuses = collections.Counter(str(v.get("status")) for v in details.values())
        terminal = sum(n for s, n in statuses.items() if s in TERMINAL)
        db = database_checks(stack.data_dir / "careflow.db", details)
        outcomes = collections.Counter(d.outcome for d in deliveries)
        exits = stack.unexpected_exits()
        api_log = stack.log_path("api").read_text(errors="replace")
        first = [d.first_answer_s for d in deliveries if d.first_answer_s is not None]
        ack_times = [d.acknowledged_s for d in acked if d.acknowledged_s is not None]
        result.update(
            {
                "requests": count,
                "concurrency": concurrency,
                "acknowledged": len(acked),
                "terminal": terminal,
                "lost": len(acked) - terminal,
                "duplicate_care_flows": db["duplicate_care_flows"],
                "duplicate_patients": db["duplicate_patients"],
                "missing_care_flows": db["missing_care_flows"],
                "misattributed_care_flows": db["misattributed_care_flows"],
                "unacknowledged": outcomes["gave_up"] + outcomes["pending"],
                "refused_4xx": outcomes["refused"],
                "wrong_request_ids": sum(1 for k, v in expected.items() if k != v),
                "statuses": dict(statuses),
                "care_flows": db["care_flows"],
                "patients": db["patients"],
                "identifiers": db["identifiers"],
                "identifier_pool": scale.identifier_pool,
                "answers": dict(sorted(sender.answers.items())),
                "attempts": sum(d.attempts for d in deliveries),
                "deliveries_retried": sum(1 for d in deliveries if d.attempts > 1),
                "first_answer_p50_s": _pct(first, 0.5),
                "first_answer_p99_s": _pct(first, 0.99),
                "all_acknowledged_after_s": round(max(ack_times), 2) if ack_times else None,
                "api_overloaded_503": api_log.count("overloaded: no workflow start slot"),
                "api_start_failures": api_log.count("temporal unavailable:"),
                "server_abandoned_creates": stack.temporal_log_lines(
                    "store-operation=create-wf-execution"
                )["store-operation=create-wf-execution"],
                "kills": stack.kills,
                "restarts": {k: v - 1 for k, v in stack.starts.items()},
                "unexpected_exits": exits,
                "load_s": round(load_seconds, 2),
                "drain_s": round(drain_seconds, 2),
                "elapsed_s": round(time.monotonic() - clock, 2),
                "log_warnings": log_summary(stack),
            }
        )
        result["ok"] = (
            result["lost"] == 0
            and result["duplicate_care_flows"] == 0
            and result["duplicate_patients"] == 0
            and result["missing_care_flows"] == 0
            and result["misattributed_care_flows"] == 0
            and result["wrong_request_ids"] == 0
            and not exits
        )
        return result
    except BaseException:
        traceback.print_exc()  # now: asyncio.run's own clean-up may take a while
        raise
    finally:
        stack.close()
        if os.environ.get("CHAOS_KEEP") == "1":
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


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
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as admin:
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


def main() -> int:
    burst = "burst" in sys.argv[1:] or os.environ.get("CHAOS_BURST") == "1"
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        result = asyncio.run(run(burst))
    except KeyboardInterrupt:
        print("interrupted; the stack is stopped", file=sys.stderr)
        return 130
    print(json.dumps(result["log_warnings"], indent=1), file=sys.stderr)
    result.pop("log_warnings")
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
