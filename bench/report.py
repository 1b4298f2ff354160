"""The figures of ``make bench`` and the table printed before them (``bench/run.py``).

``Phase`` (one run of ``bench/load.py``) and ``Drain`` (one e2e drain) are what the measuring code
in ``bench/phases.py`` returns; ``report`` prints the table of every round and returns the
figures, the JSON object the bench prints last (keys ``KEYS``, in that order).
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

KEYS = (
    "raw_start_rate",
    "ingest_rate",
    "ingest_ratio",
    "e2e_rate",
    "reference_rate",
    "e2e_ratio",
    "ack_p50_ms",
    "ack_p99_ms",
    "mapping_us_per_data_point",
    "mapping_overhead_ratio",
    "api_rss_mb",
    "worker_rss_mb",
    "ack_p99_draining_ms",
    "e2e_vs_v1_ratio",
    "history_events_per_request",
    "actions_per_request",
    "server_cpu_ms_per_request",
    "temporal_bytes_per_request",
)
# Measured only where the run's size affords it (``bench/run.py``): present after ``KEYS``.
OPTIONAL_KEYS = (
    "burst_first_answer_p50_s",
    # temporal_bytes_per_request by store (where SQLite has dbstat): what the workflow's shape
    # decides (history, mutable state) and what any workflow costs (visibility rows and indexes).
    "temporal_history_bytes_per_request",
    "temporal_mutable_state_bytes_per_request",
    "temporal_visibility_bytes_per_request",
    "temporal_queues_bytes_per_request",
)
ACCEPTANCE_LABELS = {
    "raw": "raw starts, minimal workflow",
    "raw-shaped": "raw starts, ingest's exact start",
    "ingest": "ingest: HTTP POST → 202",
    "ingest-h11": "ingest, asyncio loop + h11",
}


@dataclass
class Phase:
    """One ``bench/load.py`` run: its kind (``raw``, ``raw-shaped``, ``ingest``, ``open``…),
    its round, its last JSON line (``ok``, ``errors``, ``seconds``, ``rate`` per second, and
    latencies in ms for the open loop) and the CPU seconds of each watched process over its
    measured window (``load`` is the load generator itself)."""

    kind: str
    round: int
    result: dict[str, Any]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return float(self.result["rate"])


@dataclass
class Drain:
    """One e2e drain: ``requests`` enqueued, ``succeeded`` SUCCESS over ``seconds`` (worker ready
    → last close); CPU seconds of ``server`` and ``worker`` over the drain; the worker's RSS in
    MiB at its end; the other request statuses with their counts; and the mean history events
    per workflow by event type."""

    kind: str  # "ours" | "reference"
    round: int
    requests: int
    succeeded: int
    seconds: float
    cpu: dict[str, float]
    worker_rss_mb: float
    other: dict[str, int]
    events: dict[str, float]
    actions: float = 0.0  # mean Temporal Cloud billable actions per workflow (sampled)
    db_bytes: int = 0  # growth of temporal.db + WAL over enqueue and drain
    db_stores: dict[str, int] = field(default_factory=dict)  # growth by store (dbstat)

    @property
    def rate(self) -> float:
        """SUCCESS per second (0.0 for an empty drain)."""
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0


def mean(values: list[float]) -> float:
    """The arithmetic mean, 0.0 for no values."""
    return statistics.fmean(values) if values else 0.0


def spread(values: list[float]) -> str:
    """``(min …, max …, n=…)`` for two values or more, else empty."""
    if len(values) < 2:
        return ""
    return f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def cpu_cell(phase_cpu: dict[str, float], seconds: float, names: tuple[str, ...]) -> str:
    """Each named process's CPU seconds as a percentage of one core over ``seconds``."""
    return "  ".join(f"{n} {100 * phase_cpu.get(n, 0.0) / seconds:4.0f}%" for n in names)


def _acceptance_lines(by_kind: dict[str, list[Phase]]) -> list[str]:
    rates = {kind: [p.rate for p in items] for kind, items in by_kind.items()}
    lines = ["", f"{'phase (no worker, concurrency 50)':<36} {'mean/s':>9}  spread"]
    for kind, label in ACCEPTANCE_LABELS.items():
        if kind in rates:
            lines.append(f"  {label:<34} {mean(rates[kind]):9.1f}  {spread(rates[kind])}")
    raw_by_round = {p.round: p.rate for p in by_kind["raw"]}
    pairs = [p.rate / raw_by_round[p.round] for p in by_kind["ingest"] if raw_by_round[p.round]]
    lines.append(f"  ingest / raw, round by round: {', '.join(f'{x:.2f}' for x in pairs)}")
    h11_by_round = {p.round: p.rate for p in by_kind.get("ingest-h11", [])}
    if h11_by_round:
        h11 = [p.rate / h11_by_round[p.round] for p in by_kind["ingest"] if h11_by_round[p.round]]
        lines.append(
            f"  ingest (uvloop + httptools) / ingest (asyncio + h11), round by round: "
            f"{', '.join(f'{x:.2f}' for x in h11)}"
        )
    lines.append("  CPU per accepted start (ms; server / api / load generator):")
    for kind, label in ACCEPTANCE_LABELS.items():
        items = by_kind[kind]
        if not items:
            continue
        ok = sum(p.result["ok"] for p in items) or 1
        api = "api-h11" if kind == "ingest-h11" else "api"
        cells = " / ".join(
            f"{1000 * sum(p.cpu.get(n, 0.0) for p in items) / ok:5.2f}"
            for n in ("server", api, "load")
        )
        lines.append(f"    {label:<34} {cells}")
    return lines


def _drain_lines(drains: list[Drain]) -> list[str]:
    ours = [d for d in drains if d.kind == "ours"]
    refs = [d for d in drains if d.kind == "reference"]
    lines = [
        "",
        f"{'e2e drain (backlog → SUCCESS)':<36} {'rate/s':>9}  worker ms/req  server ms/req",
    ]
    for d in drains:
        n = d.succeeded or 1
        note = f"  not SUCCESS: {d.other}" if d.other else ""
        lines.append(
            f"  {d.kind:<10} #{d.round + 1} {d.succeeded:>5}/{d.requests:<5} {d.seconds:6.1f}s "
            f"{d.rate:9.1f}  {1000 * d.cpu['worker'] / n:13.2f}  {1000 * d.cpu['server'] / n:13.2f}"
            f"{note}"
        )
    v1s = [d for d in drains if d.kind == "v1"]
    pairs = [o.rate / r.rate for o, r in zip(ours, refs, strict=False) if r.rate]
    lines.append(
        f"  e2e {mean([d.rate for d in ours]):.1f}/s {spread([d.rate for d in ours])}; reference "
        f"{mean([d.rate for d in refs]):.1f}/s {spread([d.rate for d in refs])}; "
        f"round by round ratio {', '.join(f'{x:.2f}' for x in pairs)}"
    )
    if v1s:
        v1_pairs = [o.rate / v.rate for o, v in zip(ours, v1s, strict=False) if v.rate]
        lines.append(
            f"  v1 (frozen workflow, real activities) {mean([d.rate for d in v1s]):.1f}/s "
            f"{spread([d.rate for d in v1s])}; ours ÷ v1 round by round "
            f"{', '.join(f'{x:.2f}' for x in v1_pairs)}"
        )
    lines.append(
        "  per request: events / billable actions / server CPU ms / temporal.db bytes "
        "(history + mutable state + visibility + queues)"
    )
    for label, kinds in (("ours", ours), ("v1", v1s), ("reference", refs)):
        if kinds:
            c = per_request(kinds)
            split = " + ".join(
                f"{c[k]:.0f}"
                for k in (
                    "bytes_history",
                    "bytes_mutable_state",
                    "bytes_visibility",
                    "bytes_queues",
                )
                if k in c
            )
            lines.append(
                f"    {label:<10} {c['events']:5.1f} / {c['actions']:4.1f} / "
                f"{c['server_cpu_ms']:6.1f} / {c['bytes']:8.0f}" + (f" ({split})" if split else "")
            )
    if ours and refs and ours[-1].events != refs[-1].events:
        lines.append(
            "  WARNING: the reference's history differs from ours: update bench/reference.py"
        )
    for kinds in (ours, refs, v1s):
        if kinds:
            events = kinds[-1].events
            shape = ", ".join(f"{name.lower()} {n:g}" for name, n in events.items())
            total = sum(events.values())
            lines.append(f"  history of one {kinds[-1].kind} request: {total:g} events ({shape})")
    return lines


def _ack_lines(ack: Phase, ack_busy: Phase | None, ack_busy_h11: Phase | None = None) -> list[str]:
    result = ack.result
    lines = [
        "",
        f"ack, open loop at {result['target_rate']:.1f}/s (half the ingest rate) for "
        f"{result['seconds']:.0f}s:",
    ]
    for label, measured, api in (
        ("no worker", ack, "api"),
        ("worker draining", ack_busy, "api"),
        ("same, h11 API", ack_busy_h11, "api-h11"),
    ):
        if measured is None:
            continue
        r = measured.result
        lines.append(
            f"  {label:<15} p50 {r['p50_ms']:6.1f} ms  p90 {r['p90_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms; {r['ok']} accepted, "
            f"errors {r['errors'] or 0}, dropped {r['dropped']}; "
            f"{cpu_cell(measured.cpu, r['seconds'], ('server', api, 'worker', 'load'))}"
        )
    return lines


def per_request(drains: list[Drain]) -> dict[str, float]:
    """Cost of one request over ``drains`` (all of one kind): history events and billable
    actions (means over the sampled histories), Temporal server CPU ms (enqueue + drain) and
    Temporal database bytes (growth of file + WAL), each ÷ requests enqueued."""
    requests = sum(d.requests for d in drains) or 1
    server = sum(d.cpu.get("server", 0.0) + d.cpu.get("server_enqueue", 0.0) for d in drains)
    return {
        "events": mean([sum(d.events.values()) for d in drains]),
        "actions": mean([d.actions for d in drains]),
        "server_cpu_ms": 1000 * server / requests,
        "bytes": sum(d.db_bytes for d in drains) / requests,
        **{
            f"bytes_{store}": sum(d.db_stores.get(store, 0) for d in drains) / requests
            for store in ("history", "mutable_state", "visibility", "queues")
            if drains and all(d.db_stores for d in drains)
        },
    }


def figures(
    phases: list[Phase],
    drains: list[Drain],
    ack: Phase,
    mapping: dict[str, float],
    api_rss: float,
    ack_busy: Phase | None = None,
    burst: dict[str, float] | None = None,
) -> dict[str, float]:
    """The figures (keys ``KEYS``, then those of ``OPTIONAL_KEYS`` measured): mean rates per
    second over the rounds, their ratios, ack latencies in ms (``ack_busy``: while a worker
    drains), the mapping figures as ``bench/mapping.py`` printed them, RSS in MiB, the cost of
    one of our requests (``per_request``) and the burst's first-answer median in seconds."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for phase in phases:
        by_kind[phase.kind].append(phase.rate)
    raw_rate = mean(by_kind["raw"])
    ingest_rate = mean(by_kind["ingest"])
    ours = [d for d in drains if d.kind == "ours"]
    e2e_rate = mean([d.rate for d in ours])
    reference_rate = mean([d.rate for d in drains if d.kind == "reference"])
    v1_rate = mean([d.rate for d in drains if d.kind == "v1"])
    cost = per_request(ours)
    worker_rss = ours[-1].worker_rss_mb if ours else 0.0
    result = {
        "raw_start_rate": round(raw_rate, 1),
        "ingest_rate": round(ingest_rate, 1),
        "ingest_ratio": round(ingest_rate / raw_rate, 3) if raw_rate else 0.0,
        "e2e_rate": round(e2e_rate, 1),
        "reference_rate": round(reference_rate, 1),
        "e2e_ratio": round(e2e_rate / reference_rate, 3) if reference_rate else 0.0,
        "ack_p50_ms": round(ack.result["p50_ms"], 1),
        "ack_p99_ms": round(ack.result["p99_ms"], 1),
        "mapping_us_per_data_point": mapping["mapping_us_per_data_point"],
        "mapping_overhead_ratio": mapping["mapping_overhead_ratio"],
        "api_rss_mb": round(api_rss, 1),
        "worker_rss_mb": round(worker_rss, 1),
        "ack_p99_draining_ms": round(ack_busy.result["p99_ms"], 1) if ack_busy else 0.0,
        "e2e_vs_v1_ratio": round(e2e_rate / v1_rate, 3) if v1_rate else 0.0,
        "history_events_per_request": round(cost["events"], 1),
        "actions_per_request": round(cost["actions"], 1),
        "server_cpu_ms_per_request": round(cost["server_cpu_ms"], 1),
        "temporal_bytes_per_request": round(cost["bytes"]),
    }
    assert tuple(result) == KEYS
    if burst is not None:
        result["burst_first_answer_p50_s"] = round(burst["first_answer_p50_s"], 2)
    for store in ("history", "mutable_state", "visibility", "queues"):
        if f"bytes_{store}" in cost:
            result[f"temporal_{store}_bytes_per_request"] = round(cost[f"bytes_{store}"])
    return result


def report_lines(
    phases: list[Phase],
    drains: list[Drain],
    ack: Phase,
    ack_busy: Phase | None,
    mapping: dict[str, float],
    api_rss: float,
    elapsed: float,
    mode: str,
    ack_busy_h11: Phase | None = None,
) -> list[str]:
    """The table: acceptance phases, e2e drains, ack latency, mapping, RSS, the run itself.

    Args:
        phases: the ``raw``, ``raw-shaped`` and ``ingest`` rounds.
        drains: the e2e drains, ours and the reference's, in the order they ran.
        ack: the open-loop phase with no worker running.
        ack_busy: the same load while a worker drains (``None`` when not measured).
        mapping: ``bench/mapping.py``'s figures.
        api_rss: the API's RSS at the end, in MiB.
        elapsed: the run's wall-clock seconds.
        mode: ``full``, ``quick`` or ``smoke``.
    """
    by_kind: dict[str, list[Phase]] = defaultdict(list)
    for phase in phases:
        by_kind[phase.kind].append(phase)
    ours = [d for d in drains if d.kind == "ours"]
    worker_rss = ours[-1].worker_rss_mb if ours else 0.0
    return [
        *_acceptance_lines(by_kind),
        *_drain_lines(drains),
        *_ack_lines(ack, ack_busy, ack_busy_h11),
        f"mapping: {mapping['mapping_us_per_data_point']} us/data point, "
        f"overhead ratio {mapping['mapping_overhead_ratio']} (bench/mapping.py)",
        f"RSS: api {api_rss:.0f} MB at the end, worker {worker_rss:.0f} MB after its last drain",
        f"({mode} run, {elapsed:.0f}s; load average {os.getloadavg()[0]:.2f} at the end)",
    ]


def report(
    phases: list[Phase],
    drains: list[Drain],
    ack: Phase | None,
    ack_busy: Phase | None,
    mapping: dict[str, float],
    api_rss: float,
    elapsed: float,
    mode: str,
    burst: dict[str, float] | None = None,
    ack_busy_h11: Phase | None = None,
) -> dict[str, float]:
    """Print ``report_lines`` and return ``figures`` (arguments as for ``report_lines``; ``burst``
    the burst phase's figures, when measured)."""
    assert ack is not None
    lines = report_lines(
        phases, drains, ack, ack_busy, mapping, api_rss, elapsed, mode, ack_busy_h11
    )
    print("\n".join(lines))
    if burst is not None:
        print(f"burst: {json.dumps(burst)}")
    return figures(phases, drains, ack, mapping, api_rss, ack_busy, burst)
