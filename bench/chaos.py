"""Chaos bench: nothing acknowledged is lost, nothing is done twice — while processes die.

``python bench/chaos.py`` (``make chaos``) starts its own stack (``bench/stack.py``, shared with
``make bench``: the Temporal dev server on a SQLite file, ``python worker.py``, the API under
uvicorn; temp data dir, free loopback ports) and configures one webhook whose patient identifier
comes from the payload (a pool of 50 identifiers, so 20 requests share each patient). A load
generator then sends 1,000 webhook requests like a real sender: every delivery has its own
``webhook-id``, and a failed (5xx, 429, connection error) or timed-out attempt is retried with the
same ``webhook-id``, with exponential backoff and jitter (``Retry-After`` honoured). Meanwhile the
run SIGKILLs and restarts the worker, the API and the Temporal dev server, once each. After a
drain of at most 10 minutes it reads every acknowledged request back (``GET /v1/requests/{id}``)
and the app database (sqlite3, read only) and prints one JSON line (the last line of the output):

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

Topology: ``BENCH_TOPOLOGY=scaled`` runs ``BENCH_APIS`` API processes (default 2, each on its own
port; the sender sends each attempt to the next one, round-robin) and ``BENCH_WORKERS`` workers
(default 2) on a PostgreSQL app database (Debian's, started in a temp dir: ``bench/postgres.py``);
the chaos run kills one API process, one worker and the Temporal server.

Scale: ``CHAOS_QUICK=1`` sends 300 (burst: 1,000); ``CHAOS_SMOKE=1`` a few dozen and stays
within 45 s (the test ``tests/bench/test_chaos_smoke.py``). ``CHAOS_KEEP=1`` keeps the temp dir
(logs of every component). Exit status 0 when nothing was lost, duplicated or misattributed and
no component died on its own.

The sender and the two scenarios are ``bench/chaos_scenarios.py``; the read-back and the checks
``bench/chaos_report.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos_report import (  # noqa: E402
    COMPONENTS,
    TERMINAL,
    database_checks,
    drain,
    log_summary,
    passed,
    percentile,
)
from bench.chaos_scenarios import (  # noqa: E402
    ATTEMPT_TIMEOUT,
    BURST,
    CONNECTIONS_PER_CLIENT,
    SCALES,
    SYSTEM,
    Sender,
    make_deliveries,
    scale_name,
    send_burst,
    send_with_chaos,
)
from bench.postgres import Postgres, topology, topology_name  # noqa: E402
from bench.stack import Stack  # noqa: E402
from careflow import request_ids  # noqa: E402
from careflow.keyed_ids import id_hash_key  # noqa: E402

RATE_LIMIT = "100000/second"  # raised: the bench measures loss, not the limiter
DRAIN_SECONDS = 600.0  # a cap: on a machine shared with other work a drain of 2,000 can take 5 min


async def configure(http: httpx.AsyncClient) -> str:
    """Identifier system, a published definition (seq, mrn) and an enabled webhook.

    Args:
        http: a client on the API with the admin token (``Stack.admin_client``).

    Returns:
        The webhook's id, once the API's configuration cache knows it.
    """
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
        answer = await http.post(path, json=body)
        answer.raise_for_status()
        hook_id = answer.json().get("id", "")
    answer = await http.post(f"/v1/webhooks/{hook_id}/enable")
    answer.raise_for_status()
    # The API's configuration cache refreshes every second: wait until the hook answers.
    deadline = time.monotonic() + 15
    while (await http.post(f"/hooks/{hook_id}/test", json={})).status_code == 404:
        if time.monotonic() > deadline:
            raise TimeoutError("the webhook did not become visible to the API")
        await asyncio.sleep(0.2)
    return hook_id


def overloaded_503s(api_log: str) -> int:
    """Overload 503s the API logged: each warning line carries the count since the last one."""
    found = re.findall(r"overloaded: no workflow start slot free; answered 503 to (\d+)", api_log)
    return sum(int(n) for n in found)


async def run(burst: bool) -> dict[str, Any]:
    """One chaos (or ``burst``) run on a stack of its own; the result (module docstring)."""
    scale = SCALES[scale_name()]
    root = Path(tempfile.mkdtemp(prefix="careflow-chaos-"))
    apis, workers = topology()
    postgres = Postgres() if topology_name() == "scaled" else None
    stack = Stack(
        root,
        task_queue="chaos",
        rate_limit=RATE_LIMIT,
        temporal_metrics=True,
        apis=apis,
        workers=workers,
        database_url=postgres.start() if postgres else None,
    )
    app_db: Path | str = postgres.url if postgres else stack.data_dir / "careflow.db"
    clock = time.monotonic()
    result: dict[str, Any] = {
        "mode": "burst" if burst else "chaos",
        "scale": scale_name(),
        "topology": {
            "name": topology_name(),
            "apis": apis,
            "workers": workers,
            "app_database": "postgresql" if postgres else "sqlite",
        },
    }
    try:
        await stack.start_all()
        result["stack_start_s"] = round(time.monotonic() - clock, 2)
        async with stack.admin_client() as admin:
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
            urls = [f"{url}/hooks/{hook_id}" for url in stack.api_urls]
            sender = Sender(http, urls[0], load_started, mirrors=urls[1:], lean=True)
            if burst:
                await send_burst(sender, deliveries)
            else:
                await send_with_chaos(sender, deliveries, scale, stack, load_started)
        load_seconds = time.monotonic() - load_started
        acked = [d for d in deliveries if d.outcome == "acknowledged"]
        hash_key = id_hash_key(stack.settings)  # the APIs' key: same data dir or setting
        expected = {
            d.request_id: request_ids.request_id_for_delivery(
                hook_id, d.delivery_id, hash_key=hash_key
            )
            for d in acked
        }
        async with stack.admin_client() as admin:
            details, drain_seconds = await drain(
                admin,
                [d.request_id for d in acked if d.request_id],
                DRAIN_SECONDS,
                app_db,
            )
        statuses = collections.Counter(str(v.get("status")) for v in details.values())
        terminal = sum(n for s, n in statuses.items() if s in TERMINAL)
        db = database_checks(app_db, details)
        outcomes = collections.Counter(d.outcome for d in deliveries)
        api_log = stack.log_text("api")
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
                "first_answer_p50_s": percentile(first, 0.5),
                "first_answer_p99_s": percentile(first, 0.99),
                "all_acknowledged_after_s": round(max(ack_times), 2) if ack_times else None,
                "api_overloaded_503": overloaded_503s(api_log),
                "api_start_failures": api_log.count("temporal unavailable:"),
                "server_abandoned_creates": stack.log_lines(
                    "temporal", "store-operation=create-wf-execution"
                ),
                "kills": stack.kills,
                "restarts": stack.restarts(COMPONENTS),
                "unexpected_exits": [p.name for p in stack.unexpected_exits()],
                "load_s": round(load_seconds, 2),
                "drain_s": round(drain_seconds, 2),
                "elapsed_s": round(time.monotonic() - clock, 2),
                "log_warnings": log_summary({n: stack.log_text(n) for n in COMPONENTS}),
            }
        )
        result["ok"] = passed(result)
        return result
    except BaseException:
        traceback.print_exc()  # now: asyncio.run's own clean-up may take a while
        raise
    finally:
        stack.stop_all()
        if postgres is not None:
            postgres.stop()
        if os.environ.get("CHAOS_KEEP") == "1":
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


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
