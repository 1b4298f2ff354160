"""What metrics and tracing cost the API: its ingest rate with them on ÷ off, side by side.

``python bench/observability.py`` (after ``make install``; about 4 minutes, ``BENCH_QUICK=1``
about 1.5) starts one Temporal dev server as ``make run`` does (``bench/stack.py``) and one API
process per side on it, with no worker:

- **on**: ``api.main:app`` as shipped, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a local
  OTLP/HTTP collector stand-in (a thread of this process that decodes each export and counts
  its spans) and no sampler variable: the default sampler (``infra/tracing.py``:
  ``parentbased_traceidratio``, one request in ten traced whole), and every answer counted in
  the Prometheus metrics;
- **all**: the same with ``OTEL_TRACES_SAMPLER=parentbased_always_on``: every request traced;
- **metrics**: ``api.main:app`` without ``OTEL_*`` variables (metrics, no tracing);
- **off**: ``bench.observability_off:build_app``, the same app with no-op metrics and no
  tracing (the outcome log line stays);
- **before** (only with ``BENCH_BEFORE_DIR``, a checkout of an earlier commit): that
  checkout's ``api.main:app`` with the sink and no sampler variable, i.e. as it shipped then.

Closed-loop load (``bench/load.py``, concurrency 50, the FHIR sample) alternates between them in
ABBA order (on, all, metrics, off, then off, metrics, all, on, …); the last line is one JSON
object: per side the mean rate, the ratio to *off* (``ratio`` is on ÷ off, goal ≥ 0.95), the
CPU milliseconds per accepted request of its API process and of the dev server over its
windows, the per-round rates, and the spans the sink received from it (``spans``, warm-ups
included) next to the requests it accepted in its windows (``requests``).

``--profile DIR`` attaches ``py-spy`` (raw format, GIL samples) to each API process and prints
where its CPU time goes (``bench/profiles.py``); py-spy's sampling slows the processes, so the
rates of a profiled run are not the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from bench.phases import CONCURRENCY, FHIR_BODY, configure, run_load  # noqa: E402
from bench.procs import Proc, free_ports  # noqa: E402
from bench.profiles import summarize_profiles  # noqa: E402
from bench.report import mean  # noqa: E402
from bench.stack import Stack  # noqa: E402
from infra.tracing import DEFAULT_SAMPLE_RATIO  # noqa: E402

RATE_LIMIT = "1000000/second"
SIDE_ATTRIBUTE = "bench.side"  # a resource attribute (OTEL_RESOURCE_ATTRIBUTES) naming the side


class _Sink(BaseHTTPRequestHandler):
    """The OTLP/HTTP collector stand-in: decodes each ``ExportTraceServiceRequest`` (as a
    collector would; a body that does not decode is answered 400) and counts spans by side."""

    spans: Counter[str] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            export = ExportTraceServiceRequest.FromString(body)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, whatever its module
            self.send_response(400)
            self.end_headers()
            return
        counts: Counter[str] = Counter()
        for resource_spans in export.resource_spans:
            side = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == SIDE_ATTRIBUTE
                ),
                "?",
            )
            counts[side] += sum(len(s.spans) for s in resource_spans.scope_spans)
        with self.lock:
            type(self).spans.update(counts)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


async def start_api(
    stack: Stack,
    name: str,
    app: str,
    port: int,
    env: dict[str, str],
    *,
    factory: bool = False,
    app_dir: Path = ROOT,
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
                str(app_dir),
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


def _traced(sink_port: int, side: str, **more: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_RESOURCE_ATTRIBUTES": f"{SIDE_ATTRIBUTE}={side}",
        **more,
    }


# What ``make bench`` reports from this run (``bench/run.py``).
KEYS = ("observability_ratio", "observability_api_cpu_ratio")


async def main(profile_dir: Path | None = None) -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    rounds, warmup, window = (2, 1.0, 4.0) if quick else (4, 2.0, 10.0)
    result = await observability(
        rounds, warmup, window, profile_dir, before_dir=os.environ.get("BENCH_BEFORE_DIR")
    )
    print(json.dumps(result), flush=True)


async def observability(
    rounds: int,
    warmup: float,
    window: float,
    profile_dir: Path | None = None,
    before_dir: str | None = None,
) -> dict[str, object]:
    """The run (module docstring): ``rounds`` ABBA rounds of ``window`` seconds per side after
    ``warmup`` seconds; ``before_dir`` adds that checkout's API as the side ``before``.

    Returns:
        ``ratio`` (ingest rate on ÷ off), ``api_cpu_ratio`` (API CPU per accepted request on ÷
        off), the samplers, and per side its rate, ratio, CPU ms per request, rounds, requests
        and spans received.
    """
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="careflow-bench-obs-") as tmp:
        stack = Stack(
            Path(tmp),
            task_queue="bench-observability",
            rate_limit=RATE_LIMIT,
            temporal_args=["--headless"],
            profile_dir=profile_dir,
        )
        try:
            await stack.migrate()
            temporal_pid = (await stack.start_temporal()).pid
            all_port, metrics_port, off_port, before_port = free_ports(4)
            on_port = stack.settings.careflow_api_port
            sink_port = sink.server_port
            # The sampler variables are removed from the bench's own environment for "on".
            for key in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
                os.environ.pop(key, None)
            procs = {
                "on": await start_api(
                    stack, "api-on", "api.main:app", on_port, _traced(sink_port, "on")
                ),
                "all": await start_api(
                    stack,
                    "api-all",
                    "api.main:app",
                    all_port,
                    _traced(sink_port, "all", OTEL_TRACES_SAMPLER="parentbased_always_on"),
                ),
                "metrics": await start_api(stack, "api-metrics", "api.main:app", metrics_port, {}),
                "off": await start_api(
                    stack,
                    "api-off",
                    "bench.observability_off:build_app",
                    off_port,
                    {},
                    factory=True,
                ),
            }
            ports = {"on": on_port, "all": all_port, "metrics": metrics_port, "off": off_port}
            if before_dir:
                procs["before"] = await start_api(
                    stack,
                    "api-before",
                    "api.main:app",
                    before_port,
                    _traced(sink_port, "before"),
                    app_dir=Path(before_dir).resolve(),
                )
                ports["before"] = before_port
            for proc in procs.values():
                stack.attach_profiler(proc)
            (hook,) = await configure(stack, 1)
            await asyncio.sleep(2)  # every API's configuration cache holds the webhook
            sides = tuple(procs)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            cpu_ms: dict[str, list[float]] = {side: [] for side in sides}
            server_ms: dict[str, list[float]] = {side: [] for side in sides}
            accepted: Counter[str] = Counter()
            for rnd in range(rounds):
                for side in sides if rnd % 2 == 0 else tuple(reversed(sides)):
                    phase = await run_load(
                        stack,
                        {"api": procs[side].pid, "temporal": temporal_pid},
                        "closed",
                        "--url",
                        f"http://127.0.0.1:{ports[side]}/hooks/{hook}",
                        "--body",
                        str(FHIR_BODY),
                        "--concurrency",
                        str(CONCURRENCY),
                        "--warmup",
                        str(warmup),
                        "--duration",
                        str(window),
                    )
                    ok = max(1, phase.result["ok"])
                    accepted[side] += phase.result["ok"]
                    rates[side].append(phase.rate)
                    cpu_ms[side].append(1000 * phase.cpu["api"] / ok)
                    server_ms[side].append(1000 * phase.cpu["temporal"] / ok)
                    print(
                        f"  {side:<7} #{rnd + 1}: {phase.rate:7.1f}/s"
                        f"  api CPU {cpu_ms[side][-1]:.2f} ms/req"
                        f"  server CPU {server_ms[side][-1]:.2f} ms/req"
                        f"  errors {phase.result['errors'] or 0}",
                        flush=True,
                    )
        finally:
            stack.stop_all()
            sink.shutdown()
    if profile_dir:
        summarize_profiles(profile_dir)
    off_rate = mean(rates["off"])
    off_cpu = mean(cpu_ms["off"])
    result: dict[str, object] = {
        "ratio": round(mean(rates["on"]) / off_rate, 3) if off_rate else None,
        "api_cpu_ratio": round(mean(cpu_ms["on"]) / off_cpu, 3) if off_cpu else None,
        "sampler_on": f"default: parentbased_traceidratio {DEFAULT_SAMPLE_RATIO}",
        "sampler_all": "parentbased_always_on",
    }
    for side in sides:
        result[side] = {
            "rate": round(mean(rates[side]), 1),
            "ratio": round(mean(rates[side]) / off_rate, 3) if off_rate else None,
            "api_cpu_ms": round(mean(cpu_ms[side]), 2),
            "server_cpu_ms": round(mean(server_ms[side]), 2),
            "rounds": [round(r, 1) for r in rates[side]],
            "requests": accepted[side],
            "spans": _Sink.spans.get(side, 0),
        }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--profile", metavar="DIR", help="attach py-spy to each API process; write DIR/*.txt"
    )
    args = parser.parse_args()
    profile = Path(args.profile).resolve() if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(profile))
