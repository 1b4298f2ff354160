"""What metrics and tracing cost the API: its ingest rate with them on ÷ off, side by side.

``python bench/observability.py`` (after ``make install``; about 3 minutes, ``BENCH_QUICK=1``
about 1) starts one Temporal dev server as ``make run`` does (``bench/stack.py``) and two API
processes on it, with no worker:

- **on**: ``api.main:app`` as deployed, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a local
  OTLP/HTTP sink (a thread of this process answering 200), so every request is traced and its
  spans exported, and every answer counted in the Prometheus metrics;
- **sampled**: the same as *on* with ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` and
  ``OTEL_TRACES_SAMPLER_ARG=0.1`` (one request in ten traced; the standard SDK variables);
- **metrics**: ``api.main:app`` without ``OTEL_*`` variables (metrics, no tracing);
- **off**: ``bench.observability_off:build_app``, the same app with no-op metrics and no
  tracing (the outcome log line stays).

Closed-loop load (``bench/load.py``, concurrency 50, the FHIR sample) alternates between them in
ABBA order (on, sampled, metrics, off, then off, metrics, sampled, on, …); the last line is one
JSON object: ``on_rate``, ``sampled_rate``, ``metrics_rate``, ``off_rate``, ``ratio`` (on ÷ off,
goal ≥ 0.95), ``sampled_ratio``, ``metrics_ratio``, the API's CPU milliseconds per accepted
request on each side, the per-round rates and the number of span exports the sink received.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.phases import CONCURRENCY, FHIR_BODY, configure, run_load  # noqa: E402
from bench.report import mean  # noqa: E402
from bench.stack import Proc, Stack, free_ports  # noqa: E402

RATE_LIMIT = "1000000/second"


class _Sink(BaseHTTPRequestHandler):
    exports = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).exports += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


async def start_api(
    stack: Stack, name: str, app: str, port: int, env: dict[str, str], *, factory: bool = False
) -> Proc:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # Stack.spawn passes the caller's environment on
    try:
        proc = stack.spawn(
            name,
            [
                sys.executable,
                "-m",
                "uvicorn",
                *(["--factory"] if factory else []),
                app,
                "--app-dir",
                str(ROOT),
                "--no-access-log",
                "--log-level",
                "warning",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await stack.wait_for(proc, ready, "readiness", timeout=60)
    return proc


async def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    rounds, warmup, window = (2, 1.0, 4.0) if quick else (4, 2.0, 10.0)
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="careflow-bench-obs-") as tmp:
        stack = Stack(
            Path(tmp),
            task_queue="bench-observability",
            rate_limit=RATE_LIMIT,
            temporal_args=["--headless"],
        )
        try:
            await stack.migrate()
            await stack.start_temporal()
            off_port, sampled_port, metrics_port = free_ports(3)
            on = await start_api(
                stack,
                "api-on",
                "api.main:app",
                stack.settings.careflow_api_port,
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                },
            )
            sampled = await start_api(
                stack,
                "api-sampled",
                "api.main:app",
                sampled_port,
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.1",
                },
            )
            metrics = await start_api(stack, "api-metrics", "api.main:app", metrics_port, {})
            off = await start_api(
                stack, "api-off", "bench.observability_off:build_app", off_port, {}, factory=True
            )
            (hook,) = await configure(stack, 1)
            await asyncio.sleep(2)  # both APIs' configuration caches hold the webhook
            urls = {
                "on": f"{stack.api_url}/hooks/{hook}",
                "sampled": f"http://127.0.0.1:{sampled_port}/hooks/{hook}",
                "metrics": f"http://127.0.0.1:{metrics_port}/hooks/{hook}",
                "off": f"http://127.0.0.1:{off_port}/hooks/{hook}",
            }
            pids = {"on": on.pid, "sampled": sampled.pid, "metrics": metrics.pid, "off": off.pid}
            sides = ("on", "sampled", "metrics", "off")
            rates: dict[str, list[float]] = {side: [] for side in sides}
            cpu_ms: dict[str, list[float]] = {side: [] for side in sides}
            for rnd in range(rounds):
                for side in sides if rnd % 2 == 0 else tuple(reversed(sides)):
                    phase = await run_load(
                        stack,
                        {"api": pids[side]},
                        "closed",
                        "--url",
                        urls[side],
                        "--body",
                        str(FHIR_BODY),
                        "--concurrency",
                        str(CONCURRENCY),
                        "--warmup",
                        str(warmup),
                        "--duration",
                        str(window),
                    )
                    rates[side].append(phase.rate)
                    api_ms = 1000 * phase.cpu["api"] / max(1, phase.result["ok"])
                    cpu_ms[side].append(api_ms)
                    print(
                        f"  {side:<7} #{rnd + 1}: {phase.rate:7.1f}/s  api CPU {api_ms:.2f} ms/req"
                        f"  errors {phase.result['errors'] or 0}",
                        flush=True,
                    )
        finally:
            stack.stop_all()
            sink.shutdown()
    on_rate, off_rate = mean(rates["on"]), mean(rates["off"])
    sampled_rate, metrics_rate = mean(rates["sampled"]), mean(rates["metrics"])
    result = {
        "on_rate": round(on_rate, 1),
        "sampled_rate": round(sampled_rate, 1),
        "metrics_rate": round(metrics_rate, 1),
        "off_rate": round(off_rate, 1),
        "ratio": round(on_rate / off_rate, 3) if off_rate else None,
        "sampled_ratio": round(sampled_rate / off_rate, 3) if off_rate else None,
        "metrics_ratio": round(metrics_rate / off_rate, 3) if off_rate else None,
        **{f"{side}_api_cpu_ms": round(mean(cpu_ms[side]), 2) for side in sides},
        **{f"{side}_rounds": [round(r, 1) for r in rates[side]] for side in sides},
        "span_exports": _Sink.exports,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
