"""What ``make bench`` measures on a running ``Stack``: load phases, configuration, e2e drains.

- ``run_load``: one ``bench/load.py`` process (raw starts, closed-loop or open-loop POSTs), with
  the CPU time of the watched processes sampled over exactly its measured window.
- ``configure``: the README walkthrough's FHIR configuration and the bench's webhooks.
- ``drain``: a backlog of N requests (POSTed through the API, or reference / v1 workflows
  started directly) drained by a worker started afterwards; the rate, CPU per request, RSS,
  statuses, the history shape and billable actions of a sample of the drained workflows, and the
  growth of the Temporal database (file and WAL) over enqueue and drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import time
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.procs import cpu_seconds, die_with_parent, rss_mb
from bench.reference import REFERENCE_WORKFLOW_TYPE
from bench.report import Drain, Phase
from bench.stack import ROOT, Stack
from bench.starts import start_like_ingest
from careflow import request_ids
from infra import temporal

FHIR_BODY = ROOT / "tests" / "fixtures" / "samples" / "payloads" / "fhir-r4-patient-example.json"
CONCURRENCY = 50
REFERENCE_QUEUE = "bench-reference"
V1_QUEUE = "bench-v1"
V1_WORKFLOW_TYPE = "BenchWebhookRequestV1"  # bench/workflow_v1.py (not imported: sandboxed)
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker name
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
        preexec_fn=die_with_parent,
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


async def enqueue_reference(
    client: Client,
    webhook_id: str,
    count: int,
    workflow: str = REFERENCE_WORKFLOW_TYPE,
    task_queue: str = REFERENCE_QUEUE,
) -> int:
    """Start ``count`` ``workflow`` runs (the reference's, or v1's) with what the ingest handler
    would start, on ``task_queue``.

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
                workflow,
                request_id=request_ids.new_request_id(),
                webhook_id=webhook_id,
                body=body,
                task_queue=task_queue,
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
    v1: bool = False,
) -> Drain:
    """Enqueue ``requests`` with no worker running, then start one and time the drain.

    Ours are POSTed to ``webhook_id`` through the API; the reference's are started directly
    (``enqueue_reference``) for the reference worker, and with ``v1`` the frozen v1 workflow's
    (``bench/workflow_v1.py``, real activities, ``webhook_id`` a real webhook) for its worker.
    The worker starts once the server has recorded every start; the drain ends when all are
    closed or after ``timeout`` seconds.

    Returns:
        The drain: seconds from the worker polling to the last close, CPU seconds of the server
        (``server`` over the drain, ``server_enqueue`` over the enqueue) and the worker, the
        worker's RSS at the end, statuses, history shape, billable actions per workflow and the
        Temporal database's growth over enqueue and drain.
    """
    kind = "v1" if v1 else "reference" if reference else "ours"
    db_before = temporal_db_bytes(stack)
    stores_before = temporal_db_stores(stack)
    enqueue_cpu = cpu_seconds(temporal_pid)
    if v1:
        enqueued = await enqueue_reference(client, webhook_id, requests, V1_WORKFLOW_TYPE, V1_QUEUE)
    elif reference:
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
    enqueue_cpu = cpu_seconds(temporal_pid) - enqueue_cpu
    name, queue = "worker", None
    if v1:
        name, queue = "v1-worker", V1_QUEUE
    elif reference:
        name, queue = "reference-worker", REFERENCE_QUEUE
    # The scaled topology drains with ``stack.workers`` workers, started together.
    started = await asyncio.gather(*(stack.start_worker(name, queue) for _ in range(stack.workers)))
    worker, ready_at = started[0][0], max(at for _, at in started)
    others = [proc for proc, _ in started[1:]]
    at_start = {
        "server": cpu_seconds(temporal_pid),
        "worker": sum(cpu_seconds(p.pid) for p in [worker, *others]),
    }
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
            "worker": sum(cpu_seconds(p.pid) for p in [worker, *others]) - at_start["worker"],
            "server_enqueue": enqueue_cpu,
        }
        worker_rss = rss_mb(worker.pid)
    finally:
        for proc in [worker, *others]:
            stack.stop(proc)
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
    db_growth = temporal_db_bytes(stack) - db_before
    stores_after = temporal_db_stores(stack)
    stores = {k: stores_after.get(k, 0) - stores_before.get(k, 0) for k in stores_after}
    sample = ids[:: max(1, len(ids) // HISTORY_SAMPLE)]
    events = await history_shape(client, sample)
    actions = await billable_actions(client, sample)
    seconds = max(0.0, last_close - ready_at)
    return Drain(
        kind,
        rnd,
        enqueued,
        succeeded,
        seconds,
        cpu,
        worker_rss,
        dict(statuses),
        events,
        actions=actions,
        db_bytes=db_growth,
        db_stores=stores,
    )


def temporal_db_bytes(stack: Stack) -> int:
    """Bytes the dev server's SQLite database holds: its pages in use (page count less free
    pages, times the page size) as a reader sees them, so what is still in the WAL counts and
    the WAL file's own size (reused after each checkpoint) does not."""
    path = stack.data_dir / "temporal.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        pages, free, size = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
    return int((pages - free) * size)


# The dev server's SQLite tables (and their indexes) by what they hold.
_HISTORY_TABLES = ("history_node", "history_tree")
_STATE_TABLES = ("executions", "current_executions", "buffered_events")
_VISIBILITY_TABLES = ("executions_visibility",)


def temporal_db_stores(stack: Stack) -> dict[str, int]:
    """Bytes of ``temporal.db`` by store, from SQLite's ``dbstat`` (cells in use, indexes
    included): ``history`` (event blobs), ``mutable_state`` (open and closed executions),
    ``visibility`` (the list/search rows and their ~70 indexes) and ``queues`` (task queues,
    transfer / timer / visibility tasks, the rest). Empty when SQLite lacks ``dbstat``."""
    path = stack.data_dir / "temporal.db"
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        try:
            rows = db.execute("SELECT name, tbl_name FROM sqlite_master").fetchall()
            used = dict(db.execute("SELECT name, SUM(pgsize - unused) FROM dbstat GROUP BY name"))
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            return {}
    stores = {"history": 0, "mutable_state": 0, "visibility": 0, "queues": 0}
    for name, table in rows:
        store = (
            "history"
            if table in _HISTORY_TABLES
            else "mutable_state"
            if table in _STATE_TABLES
            else "visibility"
            if table in _VISIBILITY_TABLES
            else "queues"
        )
        stores[store] += int(used.get(name) or 0)
    return stores


async def billable_actions(client: Client, workflow_ids: list[str]) -> float:
    """Mean Temporal Cloud billable actions per workflow, counted from the history.

    Counted as Temporal Cloud documents them: the start (1), each activity attempt, the local
    activities of one workflow task together (1), each search-attribute upsert, timer, signal
    and child workflow start. Memo changes and workflow tasks are not actions. Queries are,
    but leave no event (none here).
    """
    total = 0
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        local_tasks: set[int] = set()
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                total += max(1, event.activity_task_started_event_attributes.attempt)
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                marker = event.marker_recorded_event_attributes
                if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                    local_tasks.add(marker.workflow_task_completed_event_id)
            elif kind in (
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
                EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                EventType.EVENT_TYPE_TIMER_STARTED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
            ):
                total += 1
        total += len(local_tasks)
    return total / (len(workflow_ids) or 1)


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
