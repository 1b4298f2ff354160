"""``codec_e2e_ratio``: end-to-end rate with the payload codec on ÷ off, side by side.

A stack of its own (``bench/stack.py``: the dev server, the API, the worker). Each round starts
the API and the worker either as usual (AES-GCM codec on) or through ``bench/codec_off.py``
(plain pydantic converter), then:

1. warms them up: a batch of ``WARMUP_REQUESTS`` requests on a webhook of its own, waited for
   until closed (the first workflow tasks of a fresh worker import, build the sandbox and open
   connections: seconds of CPU on this machine, which are not the codec's);
2. POSTs N FHIR samples and times them on the Temporal server's clock, from the first measured
   workflow's start to the last one's close (the load generator's own start-up is left out),
   and takes the CPU seconds the API and the worker spent meanwhile.

Before the first round the fresh dev server drains a batch of ``CONCURRENCY`` requests (its own
warm-up, which would otherwise land on round 1, always a codec-on round; both warm-ups are
smaller when the rounds are, in the smoke size).
Rounds come in ABBA blocks (on, off, off, on), so a linear drift — the Temporal database growing,
other work on the machine ramping — weighs the same on both sides of a block. Each block gives
one ratio (its two on-rounds' requests over their seconds ÷ the same for its two off-rounds);
``codec_e2e_ratio`` is the median over the blocks, so one block disturbed by a burst of other
work on the shared machine does not decide the figure. Rates are pooled (requests ÷ seconds)
over all rounds of a side. ``codec_cpu_ratio`` is the same median for the API's and the
worker's CPU seconds per request (on ÷ off): what the codec costs, much less swayed by the
other work on the machine than a rate. ``python -m bench.codec`` runs this alone and prints the
JSON with the load average.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

import cli
from bench.phases import CONCURRENCY, FHIR_BODY, configure, run_load
from bench.procs import Proc, cpu_seconds
from bench.stack import ROOT, Stack
from infra import temporal
from infra.codec import ENCODING

KEYS = ("codec_on_rate", "codec_off_rate", "codec_e2e_ratio", "codec_cpu_ratio")
WARMUP_REQUESTS = 20
OFF = [sys.executable, str(ROOT / "bench" / "codec_off.py")]


async def _start(stack: Stack, codec_on: bool) -> tuple[Proc, Proc]:
    """The API and the worker, with or without the codec; once both are ready."""
    api_cmd = [*cli.api_command(stack.settings), "--log-level", "warning"]
    if not codec_on:
        api_cmd = [*OFF, *api_cmd[1:]]  # api_command starts with the interpreter
    api = stack.spawn("api", api_cmd)
    worker_cmd = [sys.executable, str(ROOT / "worker.py")]
    worker = stack.spawn("worker", [*OFF, str(ROOT / "worker.py")] if not codec_on else worker_cmd)

    async def polling() -> bool:
        return "polling task queue" in worker.log_text()

    async def ready() -> bool:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{stack.api_url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await stack.wait_for(api, ready, "readiness", timeout=60)
    await stack.wait_for(worker, polling, "'polling task queue' line", timeout=60)
    return api, worker


async def _check_encoding(client: Client, workflow_id: str, codec_on: bool) -> None:
    """The round measured what it says: the request's input is encrypted iff the codec is on."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        [payload] = event.workflow_execution_started_event_attributes.input.payloads
        if (payload.metadata.get("encoding") == ENCODING) != codec_on:
            raise RuntimeError(
                f"codec {'on' if codec_on else 'off'} round wrote {payload.metadata}"
            )
        return


async def _post(stack: Stack, hook: str, requests: int) -> int:
    """POST ``requests`` FHIR samples to ``hook`` (``CONCURRENCY`` at a time); how many got 202."""
    phase = await run_load(
        stack,
        {},
        "closed",
        "--url",
        f"{stack.api_url}/hooks/{hook}",
        "--body",
        str(FHIR_BODY),
        "--concurrency",
        str(CONCURRENCY),
        "--count",
        str(requests),
    )
    return int(phase.result["ok"])


async def _drained(client: Client, hook: str, sent: int, timeout: float) -> tuple[float, str]:
    """Wait until ``sent`` requests of ``hook`` closed; (seconds from the first start to the
    last close on the Temporal server's clock, one workflow id)."""
    query = f"WebhookId='{hook}' AND ExecutionStatus!='Running'"
    deadline = time.monotonic() + timeout
    while (await client.count_workflows(query)).count < sent:
        if time.monotonic() > deadline:
            raise RuntimeError(f"codec bench: {sent} requests not drained in {timeout}s")
        await asyncio.sleep(0.25)
    first, last, some_id = float("inf"), 0.0, ""
    async for execution in client.list_workflows(query, page_size=1000):
        some_id = execution.id
        first = min(first, execution.start_time.timestamp())
        if execution.close_time is not None:
            last = max(last, execution.close_time.timestamp())
    return max(1e-6, last - first), some_id


def is_codec_on(round_index: int) -> bool:
    """ABBA: rounds 0 and 3 of each block of four run with the codec on."""
    return round_index % 4 in (0, 3)


Round = tuple[bool, int, float, float]  # codec on, requests, seconds, API + worker CPU seconds


def summarize(rounds: list[Round]) -> dict[str, float]:
    """The figures of ABBA rounds ``(codec_on, requests, seconds, cpu_seconds)``, in run order.

    Returns:
        ``{codec_on_rate, codec_off_rate, codec_e2e_ratio, codec_cpu_ratio}``: the pooled rates
        (requests/s); the median over the blocks of four of (on requests ÷ on seconds) ÷ (off ÷
        off); the same median of (on CPU seconds ÷ on requests) ÷ (off ÷ off).
    """

    def per(selected: list[Round], on: bool, field: int) -> float:
        requests = sum(r[1] for r in selected if r[0] == on)
        total = sum(r[field] for r in selected if r[0] == on)
        return total / requests if requests else 0.0

    def median_ratio(field: int, invert: bool) -> float:
        blocks = [rounds[i : i + 4] for i in range(0, len(rounds) - 3, 4)]  # whole blocks only
        ratios = [
            (per(b, False, field) / per(b, True, field))
            if invert
            else (per(b, True, field) / per(b, False, field))
            for b in blocks
            if per(b, True, field) and per(b, False, field)
        ]
        return round(statistics.median(ratios), 3) if ratios else 0.0

    on, off = per(rounds, True, 2), per(rounds, False, 2)  # seconds per request
    return {
        "codec_on_rate": round(1 / on, 2) if on else 0.0,
        "codec_off_rate": round(1 / off, 2) if off else 0.0,
        "codec_e2e_ratio": median_ratio(2, invert=True),  # rate on ÷ off = s/req off ÷ on
        "codec_cpu_ratio": median_ratio(3, invert=False),
    }


async def codec_ratio(requests: int, blocks: int, timeout: float) -> dict[str, float]:
    """Run ``blocks`` ABBA blocks of rounds of ``requests`` each (plus a warm-up batch each).

    Returns:
        ``{codec_on_rate, codec_off_rate, codec_e2e_ratio, codec_cpu_ratio}`` (``summarize``).
    """
    tmp = Path(tempfile.mkdtemp(prefix="careflow-bench-codec-"))
    stack = Stack(
        tmp, task_queue="bench-codec", rate_limit="1000000/second", temporal_args=["--headless"]
    )
    rounds: list[Round] = []
    try:
        await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        api, worker = await _start(stack, True)
        hooks = await configure(stack, blocks * 4 * 2 + 1)
        # The fresh dev server's own warm-up (caches, task queue partitions), before round 1
        # and not in it: round 1 is always a codec-on round.
        warm_stack = min(CONCURRENCY, 2 * requests)  # smaller in the smoke size
        await _drained(client, hooks[-1], await _post(stack, hooks[-1], warm_stack), timeout)
        stack.stop(worker)
        stack.stop(api)
        for rnd in range(blocks * 4):
            codec_on = is_codec_on(rnd)
            warm_hook, hook = hooks[2 * rnd], hooks[2 * rnd + 1]
            api, worker = await _start(stack, codec_on)
            try:
                warm = await _post(stack, warm_hook, min(WARMUP_REQUESTS, requests))
                await _drained(client, warm_hook, warm, timeout)
                cpu_before = cpu_seconds(api.pid) + cpu_seconds(worker.pid)
                sent = await _post(stack, hook, requests)
                seconds, some_id = await _drained(client, hook, sent, timeout)
                cpu = cpu_seconds(api.pid) + cpu_seconds(worker.pid) - cpu_before
                await _check_encoding(client, some_id, codec_on)
                rounds.append((codec_on, sent, seconds, cpu))
                label = "on " if codec_on else "off"
                print(
                    f"  codec {label} #{rnd + 1}: {sent} requests end to end in {seconds:.2f} s"
                    f" = {sent / seconds:.1f}/s, API + worker CPU {1000 * cpu / sent:.1f}"
                    f" ms/request (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
            finally:
                stack.stop(worker)
                stack.stop(api)
    except BaseException:
        for proc in stack.unexpected_exits():
            print(f"--- {proc.name} log tail ---\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        stack.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarize(rounds)


def main() -> None:
    """``python -m bench.codec [requests] [blocks]``: the codec figures alone, as JSON."""
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    before = os.getloadavg()
    figures = asyncio.run(codec_ratio(requests, blocks, 300))
    after = os.getloadavg()
    print(json.dumps({**figures, "load_average_before": before, "load_average_after": after}))


if __name__ == "__main__":
    main()
