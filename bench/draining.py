"""The ack latency while the worker drains, alone and side by side (``make bench``'s
``ack_p99_draining_ms`` phase, in about two minutes instead of ten).

Starts a ``Stack`` (dev server, API, no worker), POSTs a backlog with the closed-loop load for
``--backlog-seconds`` (its rate is the measured ingest rate), starts the worker, then runs the
open loop at half the ingest rate for ``--rounds`` rounds per variant, variants alternating
(ABBA), the worker started afresh for each. A variant is the worker's settings
(``--variant CAREFLOW_WORKER_NICE=10``; ``base``: none). Besides the client's p50/p99 it reads
the API's own histograms over each round: ``handler_*`` (handler to answer) and ``start_rpc_*``
(the ``start_workflow`` RPC alone, bucket bounds): when they match the client's figures, the
time is spent in the Temporal server, not in the API. ``--profile DIR`` attaches ``py-spy`` to
the API and the workers for the whole run.

Usage: ``.venv/bin/python bench/draining.py --variant base --variant CAREFLOW_WORKER_NICE=10``.
The last line is a JSON object: per variant each round's figures, CPU cores per process, the
workflows drained during it and the load average.
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

import httpx  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench.phases import CONCURRENCY, FHIR_BODY, configure, run_load  # noqa: E402
from bench.procs import Proc  # noqa: E402
from bench.stack import Stack  # noqa: E402
from infra import temporal  # noqa: E402


async def probe(args: argparse.Namespace) -> dict[str, object]:
    """The run (module docstring); returns the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="careflow-draining-"))
    profile = Path(args.profile).resolve() if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        tmp,
        task_queue="bench-requests",
        rate_limit="1000000/second",
        temporal_args=["--headless"],
        profile_dir=profile,
    )
    figures: dict[str, object] = {}
    try:
        await stack.migrate()
        server = await stack.start_temporal()
        api = await stack.start_api()
        client = await temporal.connect(stack.settings)
        [hook] = await configure(stack, 1)
        url = f"{stack.api_url}/hooks/{hook}"
        body = ["--url", url, "--body", str(FHIR_BODY)]
        watched = {"server": server.pid, "api": api.pid}
        backlog = await run_load(
            stack,
            watched,
            "closed",
            *body,
            "--concurrency",
            str(CONCURRENCY),
            "--warmup",
            "0.5",
            "--duration",
            str(args.backlog_seconds),
        )
        rate = args.rate or max(1.0, backlog.rate / 2)
        figures["ingest_rate"] = round(backlog.rate, 1)
        figures["open_rate"] = round(rate, 1)
        print(f"backlog: {backlog.rate:.1f}/s accepted; open loop at {rate:.1f}/s", flush=True)
        open_loop = ["open", *body, "--rate", f"{rate:.2f}", "--warmup", "1"]
        open_loop += ["--duration", str(args.duration)]
        rounds: dict[str, list[dict[str, float]]] = {}
        for rnd in range(args.rounds):
            order = args.variant if rnd % 2 == 0 else list(reversed(args.variant))
            for variant in order:
                closed_before = await closed(client)
                worker = await start_worker(stack, variant)
                try:
                    await asyncio.sleep(2)
                    before = await histograms(stack)
                    phase = await run_load(stack, {**watched, "worker": worker.pid}, *open_loop)
                    after = await histograms(stack)
                finally:
                    stack.stop(worker)
                drained = await closed(client) - closed_before
                seconds = phase.result["seconds"]
                row = {
                    "p50_ms": round(phase.result["p50_ms"], 1),
                    "p99_ms": round(phase.result["p99_ms"], 1),
                    "errors": phase.result["errors"] or 0,
                    "load": round(os.getloadavg()[0], 2),
                    "drained": drained,
                    **{f"cpu_{k}": round(v / seconds, 2) for k, v in phase.cpu.items()},
                    **{
                        f"{name}_p{q}_ms": quantile_ms(before[name], after[name], q / 100)
                        for name in HISTOGRAMS.values()
                        for q in (50, 99)
                    },
                }
                rounds.setdefault(variant, []).append(row)
                print(f"  {variant} #{rnd + 1}: {json.dumps(row)}", flush=True)
        figures["rounds"] = rounds
    finally:
        stack.stop_all()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return figures


# In-process times the API measures itself (``api/metrics.py``): from the handler to the answer,
# and the start_workflow RPC alone. The client's latency less these is queueing before the
# handler (accept, the event loop, the CPU).
HISTOGRAMS = {
    "careflow_webhook_answer_seconds": "handler",
    "careflow_workflow_start_seconds": "start_rpc",
}


async def histograms(stack: Stack) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts (upper bound in s → count) of ``HISTOGRAMS``, all labels summed."""
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{stack.api_url}/metrics")).text
    found: dict[str, dict[float, float]] = {short: {} for short in HISTOGRAMS.values()}
    for family in text_string_to_metric_families(text):
        short = HISTOGRAMS.get(family.name)
        if short is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                found[short][bound] = found[short].get(bound, 0.0) + sample.value
    return found


def quantile_ms(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound (ms) of the bucket holding quantile ``q`` of the counts between two
    readings (-1 when none)."""
    deltas = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    if not deltas or deltas[-1][1] <= 0:
        return -1.0
    total = deltas[-1][1]
    for bound, count in deltas:
        if count >= q * total:
            return round(bound * 1000, 1)
    return -1.0


async def closed(client: Client) -> int:
    """Workflows closed so far (visibility count)."""
    return (await client.count_workflows("ExecutionStatus != 'Running'")).count


async def start_worker(stack: Stack, variant: str) -> Proc:
    """The worker with the variant's settings (``NAME=VALUE`` pairs joined by ``+``; ``base``:
    none), e.g. ``CAREFLOW_WORKER_NICE=10``."""
    env = dict(pair.split("=", 1) for pair in variant.split("+") if "=" in pair)
    stack.extra_env.update(env)
    try:
        proc, _ = await stack.start_worker()
    finally:
        for name in env:
            del stack.extra_env[name]
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant",
        action="append",
        help="worker settings NAME=VALUE+NAME=VALUE (repeat the option; default: base)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--backlog-seconds", type=float, default=25.0)
    parser.add_argument("--rate", type=float, default=0.0, help="open-loop rate (default: half)")
    parser.add_argument("--profile", metavar="DIR")
    args = parser.parse_args()
    args.variant = args.variant or ["base"]
    print(json.dumps(asyncio.run(probe(args))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
