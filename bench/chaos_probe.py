"""Probe: what the embedded SQLite Temporal dev server does with N workflow starts at once.

``python bench/chaos_probe.py 100 500 1000 2000`` starts a dev server exactly as ``make run``
does (``bench/stack.py``; no worker, no API), then for each N issues N concurrent
``start_workflow`` calls shaped like the API's (same workflow type, search attributes, a ~300
byte body, ``rpc_timeout`` 5 s like ``api.ingest.START_TIMEOUT``), optionally through a
semaphore (``--limit K``, the API's backpressure), and prints one JSON line per N: started,
failed (by gRPC status), latency percentiles, wall time, starts per second, and how many
``create-wf-execution`` persistence operations the server abandoned (its log). Every workflow
stays open (no worker), so each round also measures the server with more open workflows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client  # noqa: E402
from temporalio.common import (  # noqa: E402
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError  # noqa: E402

from bench.stack import Stack  # noqa: E402
from careflow.messages import WebhookRequestInput  # noqa: E402
from careflow.models import RequestStatus  # noqa: E402
from infra import temporal  # noqa: E402


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


async def start_one(
    client: Client,
    gate: asyncio.Semaphore | None,
    timeout: float,
    latencies: list[float],
    failures: collections.Counter[str],
) -> None:
    """One start shaped like the API's; its latency (gate wait included) or its failure."""
    request_id = "req_" + uuid.uuid4().hex
    started = time.monotonic()
    request = WebhookRequestInput(
        request_id=request_id,
        webhook_id="wh_probe",
        care_flow_definition_id="probe",
        received_at=datetime.now(UTC),
        body=b'{"seq": 1, "note": "' + b"x" * 300 + b'"}',
        handler_status=RequestStatus.SCHEDULED,
    )
    try:
        if gate is not None:
            await gate.acquire()
        try:
            await client.start_workflow(
                temporal.WORKFLOW_TYPE,
                request,
                id=request_id,
                task_queue="probe-no-worker",
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(temporal.SA_WEBHOOK_ID, "wh_probe"),
                        SearchAttributePair(temporal.SA_REQUEST_STATUS, "RECEIVED"),
                        SearchAttributePair(temporal.SA_IS_TEST, False),
                    ]
                ),
                rpc_timeout=timedelta(seconds=timeout),
            )
        finally:
            if gate is not None:
                gate.release()
    except RPCError as exc:
        failures[exc.status.name if exc.status else "unknown"] += 1
        return
    latencies.append(time.monotonic() - started)


async def probe(counts: list[int], limit: int | None, timeout: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="careflow-probe-"))
    stack = Stack(
        root, task_queue="probe-no-worker", rate_limit="100000/second", temporal_metrics=True
    )
    try:
        await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        gate = asyncio.Semaphore(limit) if limit else None
        for n in counts:
            key = "store-operation=create-wf-execution"
            abandoned_before = stack.log_lines("temporal", key)
            latencies: list[float] = []
            failures: collections.Counter[str] = collections.Counter()
            began = time.monotonic()
            await asyncio.gather(
                *(start_one(client, gate, timeout, latencies, failures) for _ in range(n))
            )
            wall = time.monotonic() - began
            await asyncio.sleep(1)
            latencies.sort()
            print(
                json.dumps(
                    {
                        "concurrent_starts": n,
                        "limit": limit,
                        "started": len(latencies),
                        "failed": dict(failures),
                        "latency_p50_s": _pct(latencies, 0.5),
                        "latency_p99_s": _pct(latencies, 0.99),
                        "latency_max_s": _pct(latencies, 1.0),
                        "wall_s": round(wall, 2),
                        "starts_per_s": round(len(latencies) / wall, 1),
                        "server_abandoned_creates": stack.log_lines("temporal", key)
                        - abandoned_before,
                    }
                ),
                flush=True,
            )
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("counts", nargs="*", type=int, default=[100, 500, 1000, 2000])
    parser.add_argument("--limit", type=int, default=None, help="semaphore around the starts")
    parser.add_argument("--timeout", type=float, default=5.0, help="rpc_timeout, seconds")
    args = parser.parse_args()
    asyncio.run(probe(args.counts, args.limit, args.timeout))


if __name__ == "__main__":
    main()
