"""What ``make bench`` measures on a running ``Stack``: load phases, configuration, e2e drains.

- ``run_load``: one ``bench/load.py`` process (raw starts, closed-loop or open-loop POSTs), with
  the CPU time of the watched processes sampled over exactly its measured window.
- ``configure``: the README walkthrough's FHIR configuration and the bench's webhooks.
- ``drain``: a backlog of N requests (POSTed through the API, or reference workflows started
  directly) drained by a worker started afterwards; the rate, CPU per request, RSS, statuses and
  the history shape of a sample of the drained workflows.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.reference import REFERENCE_WORKFLOW_TYPE
from bench.report import Drain, Phase
from bench.stack import ROOT, Stack, _die_with_parent, cpu_seconds, rss_mb
from bench.starts import start_like_ingest
from careflow import request_ids
from infra import temporal

FHIR_BODY = ROOT / "tests" / "fixtures" / "samples" / "payloads" / "fhir-r4-patient-example.json"
CONCURRENCY = 50
REFERENCE_QUEUE = "bench-reference"
HISTORY_SAMPLE = 10  # workflows per drain whose history is read


async def run_load(stack: Stack, watched: dict[str, int], *args: str) -> Phase:
    """Run ``bench/load.py`` with ``args``; sample ``watched`` processes' CPU at its marks.

    Args:
        stack: where its log goes.
        watched: process name → pid, whose CPU seconds are taken between ``MARK start`` and
            ``MARK end``.
        args: ``bench/load.py``'s command line (the mode first).

    Returns:
        The phase (kind = the mode, round 0): its JSON result, and CPU seconds per watched
        process plus ``load`` (the generator's own).

    Raises:
        RuntimeError: the load generator failed.
    """
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


async def configure(stack: Stack, webhooks: int) -> list[str]:
    """The README walkthrough's FHIR configuration with ``webhooks`` enabled webhooks.

    One request goes through the whole API path (validation included) before anything is
    measured.

    Returns:
        The webhooks' ids.
    """
    walkthrough = json.loads((ROOT / "examples" / "fhir-walkthrough.json").read_text())
    async with stack.admin_client() as http:
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
        answer = await http.post(
            f"/hooks/{ids[0]}/test",
            content=FHIR_BODY.read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        answer.raise_for_status()
        if answer.json()["verdict"] != "SCHEDULED":
            raise RuntimeError(f"the bench webhook rejects the sample: {answer.text}")
    return ids


async def enqueue_reference(client: Client, webhook_id: str, count: int) -> int:
    """Start ``count`` reference workflows with what the ingest handler would start.

    Returns:
        How many were started (``CONCURRENCY`` starts at a time).
    """
    body = FHIR_BODY.read_bytes()
    remaining = count
    started = 0

    async def some() -> None:
        nonlocal remaining, started
        while remaining > 0:
            remaining -= 1
            await start_like_ingest(
                client,
                REFERENCE_WORKFLOW_TYPE,
                request_id=request_ids.new_request_id(),
                webhook_id=webhook_id,
                body=body,
                task_queue=REFERENCE_QUEUE,
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
    requests: int,
    timeout: float,
) -> Drain:
    """Enqueue ``requests`` with no worker running, then start one and time the drain.

    Ours are POSTed to ``webhook_id`` through the API; the reference's are started directly
    (``enqueue_reference``) for the reference worker. The worker starts once the server has
    recorded every start; the drain ends when all are closed or after ``timeout`` seconds.

    Returns:
        The drain: seconds from the worker polling to the last close, CPU seconds of the server
        and the worker meanwhile, the worker's RSS at the end, statuses, history shape.
    """
    kind = "reference" if reference else "ours"
    if reference:
        enqueued = await enqueue_reference(client, webhook_id, requests)
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
            str(requests),
        )
        enqueued = int(phase.result["ok"])
        if phase.result["errors"]:
            print(f"  enqueue {kind}: not accepted: {phase.result['errors']}", flush=True)
    query = f"WebhookId='{webhook_id}'"
    # Start the worker once the server has recorded every start (its visibility writes done).
    settle = time.monotonic() + 30
    while (await client.count_workflows(query)).count < enqueued and time.monotonic() < settle:
        await asyncio.sleep(0.1)
    if reference:
        worker, ready_at = await stack.start_worker("reference-worker", REFERENCE_QUEUE)
    else:
        worker, ready_at = await stack.start_worker()
    at_start = {"server": cpu_seconds(temporal_pid), "worker": cpu_seconds(worker.pid)}
    deadline = time.monotonic() + timeout
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
    seconds = max(0.0, last_close - ready_at)
    return Drain(kind, rnd, enqueued, succeeded, seconds, cpu, worker_rss, dict(statuses), events)


async def history_shape(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """Mean history events per workflow by event type, over ``workflow_ids``.

    Ours and the reference must match (and neither may show timed-out or failed tasks).

    Returns:
        Event type name (``WORKFLOW_TASK_COMPLETED``…) → mean count, sorted by name.
    """
    counts: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            counts[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
    n = len(workflow_ids) or 1
    return {name: count / n for name, count in sorted(counts.items())}
