"""``codec_e2e_ratio``: end-to-end rate with the payload codec on ÷ off, side by side.

A stack of its own (``bench/stack.py``: the dev server, the API, the worker). Each round starts
the API and the worker either as usual (AES-GCM codec on) or through ``bench/codec_off.py``
(plain pydantic converter), POSTs N FHIR samples through the API while the worker runs, and
times the whole path: first POST → last request closed. Rounds alternate ABBA (on, off, off,
on, …), so drift weighs the same on both sides; each side's rate is the mean of its rounds.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

import cli
from bench.phases import CONCURRENCY, FHIR_BODY, configure, run_load
from bench.report import mean
from bench.stack import ROOT, Proc, Stack
from infra import temporal
from infra.codec import ENCODING

KEYS = ("codec_on_rate", "codec_off_rate", "codec_e2e_ratio")
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


async def codec_ratio(requests: int, rounds: int, timeout: float) -> dict[str, float]:
    """Run the rounds; ``{codec_on_rate, codec_off_rate, codec_e2e_ratio}`` (requests/s)."""
    tmp = Path(tempfile.mkdtemp(prefix="careflow-bench-codec-"))
    stack = Stack(
        tmp, task_queue="bench-codec", rate_limit="1000000/second", temporal_args=["--headless"]
    )
    rates: dict[bool, list[float]] = {True: [], False: []}
    try:
        await stack.start_temporal()
        client = await temporal.connect(stack.settings)
        api, worker = await _start(stack, True)
        hooks = await configure(stack, rounds * 2)
        stack.stop(worker)
        stack.stop(api)
        for rnd in range(rounds * 2):
            codec_on = rnd % 4 in (0, 3)
            api, worker = await _start(stack, codec_on)
            try:
                started = time.time()
                phase = await run_load(
                    stack,
                    {},
                    "closed",
                    "--url",
                    f"{stack.api_url}/hooks/{hooks[rnd]}",
                    "--body",
                    str(FHIR_BODY),
                    "--concurrency",
                    str(CONCURRENCY),
                    "--count",
                    str(requests),
                )
                sent = int(phase.result["ok"])
                query = f"WebhookId='{hooks[rnd]}' AND ExecutionStatus!='Running'"
                deadline = time.monotonic() + timeout
                while (await client.count_workflows(query)).count < sent:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"codec round {rnd + 1}: not drained in {timeout}s")
                    await asyncio.sleep(0.25)
                last, some_id = 0.0, ""
                async for execution in client.list_workflows(query, page_size=1000):
                    some_id = execution.id
                    if execution.close_time is not None:
                        last = max(last, execution.close_time.timestamp())
                await _check_encoding(client, some_id, codec_on)
                rate = sent / max(1e-6, last - started)
                rates[codec_on].append(rate)
                label = "on " if codec_on else "off"
                print(
                    f"  codec {label} #{rnd + 1}: {sent} requests end to end = {rate:.1f}/s",
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
    on, off = mean(rates[True]), mean(rates[False])
    return {
        "codec_on_rate": round(on, 2),
        "codec_off_rate": round(off, 2),
        "codec_e2e_ratio": round(on / off, 3) if off else 0.0,
    }
