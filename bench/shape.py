"""The workflow's shape alone: ``make bench``'s e2e drains of ours and the frozen v1, side by side.

``python bench/shape.py [--requests 150] [--rounds 2]`` starts its own stack (``bench/stack.py``:
the dev server as ``make run`` starts it, the API, a worker per drain), configures the README's
FHIR walkthrough, then drains ``--requests`` of ours and of v1 (``bench/workflow_v1.py``, real
activities) per round, in ABBA order, with ``bench.phases.drain`` — the very drains of
``make bench``, without its other phases (about 2 minutes at load 10 instead of 10–25).

Prints one JSON object: the load average at start and end, and per kind (``ours``, ``v1``) the
drain rate (mean over rounds, and each round), history events, billable actions, server and
worker CPU ms and ``temporal.db`` bytes per request (pages used, and by store from ``dbstat``:
history, mutable state, visibility, queues); and ``e2e_vs_v1_ratio``. To compare two versions of
the workflow, run it in each checkout one after the other (the README's round-3 figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.phases import configure, drain  # noqa: E402
from bench.report import Drain, mean, per_request  # noqa: E402
from bench.stack import Stack  # noqa: E402
from infra import temporal  # noqa: E402


async def shape(requests: int, rounds: int) -> dict[str, object]:
    """Drain ours and v1 ``rounds`` times each (ABBA); the figures (module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="careflow-shape-"))
    stack = Stack(
        tmp, task_queue="bench-requests", rate_limit="1000000/second", temporal_args=["--headless"]
    )
    figures: dict[str, object] = {"load_start": [round(x, 2) for x in os.getloadavg()]}
    drains: list[Drain] = []
    try:
        await stack.migrate()
        server = await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        await stack.start_api()
        hooks = await configure(stack, 1 + 2 * rounds)
        for rnd in range(rounds):
            for kind in ["ours", "v1"] if rnd % 2 == 0 else ["v1", "ours"]:
                result = await drain(
                    stack,
                    client,
                    server.pid,
                    reference=False,
                    v1=kind == "v1",
                    webhook_id=hooks[1 + rnd + (rounds if kind == "v1" else 0)],
                    rnd=rnd,
                    requests=requests,
                    timeout=600,
                )
                drains.append(result)
                print(
                    f"  {kind} #{rnd + 1}: {result.succeeded}/{result.requests} SUCCESS "
                    f"at {result.rate:.1f}/s",
                    flush=True,
                )
    finally:
        stack.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    figures["load_end"] = [round(x, 2) for x in os.getloadavg()]
    for kind in ("ours", "v1"):
        of_kind = [d for d in drains if d.kind == kind]
        cost = per_request(of_kind)
        enqueued = sum(d.requests for d in of_kind) or 1
        figures[kind] = {
            "rate": round(mean([d.rate for d in of_kind]), 2),
            "rounds": [round(d.rate, 2) for d in of_kind],
            "events": cost["events"],
            "actions": cost["actions"],
            "server_cpu_ms": round(cost["server_cpu_ms"], 1),
            "worker_cpu_ms": round(1000 * sum(d.cpu["worker"] for d in of_kind) / enqueued, 1),
            "bytes": round(cost["bytes"]),
            "by_store": {k[6:]: round(v) for k, v in cost.items() if k.startswith("bytes_")},
        }
    ours, v1 = figures["ours"], figures["v1"]
    assert isinstance(ours, dict) and isinstance(v1, dict)
    figures["e2e_vs_v1_ratio"] = round(ours["rate"] / v1["rate"], 3) if v1["rate"] else 0.0
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150, help="requests per drain")
    parser.add_argument("--rounds", type=int, default=2, help="drains of each kind (ABBA)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(shape(args.requests, args.rounds))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
