"""``make bench``'s figures and table, from phases and drains made up for the purpose."""

from __future__ import annotations

import json

import pytest

from bench.report import (
    KEYS,
    OPTIONAL_KEYS,
    Drain,
    Phase,
    cpu_cell,
    figures,
    mean,
    report,
    report_lines,
    spread,
)

MAPPING = {"mapping_us_per_data_point": 22.07, "mapping_overhead_ratio": 1.2}
EVENTS = {"ACTIVITY_TASK_COMPLETED": 3.0, "WORKFLOW_TASK_COMPLETED": 4.0}


def phase(kind: str, rnd: int, ok: int, seconds: float = 5.0, **cpu: float) -> Phase:
    return Phase(kind, rnd, {"ok": ok, "errors": {}, "seconds": seconds, "rate": ok / seconds}, cpu)


def drain(kind: str, rnd: int, succeeded: int, seconds: float, **changes: object) -> Drain:
    fields: dict[str, object] = {
        "requests": 300,
        "cpu": {"server": 12.0, "worker": 1.5},
        "worker_rss_mb": 131.26,
        "other": {},
        "events": dict(EVENTS),
    }
    fields.update(changes)
    return Drain(kind, rnd, succeeded=succeeded, seconds=seconds, **fields)  # type: ignore[arg-type]


def ack_phase(p50: float, p99: float, **cpu: float) -> Phase:
    result = {
        "ok": 400,
        "errors": {},
        "seconds": 20.0,
        "rate": 20.0,
        "target_rate": 120.04,
        "dropped": 0,
        "p50_ms": p50,
        "p90_ms": 9.0,
        "p99_ms": p99,
        "max_ms": 40.0,
    }
    return Phase("open", 0, result, cpu)


# Two rounds: raw 300 then 200 per second, ingest 240 then 150 (ratios 0.80 and 0.75).
PHASES = [
    phase("raw", 0, 1500, server=6.0, api=0.0, load=1.5),
    phase("raw-shaped", 0, 1300, server=6.5, load=1.3),
    phase("ingest", 0, 1200, server=6.0, api=3.6, load=0.6),
    phase("ingest", 1, 750, server=4.0, api=2.25, load=0.4),
    phase("raw-shaped", 1, 900, server=5.0, load=0.9),
    phase("raw", 1, 1000, server=4.0, load=1.0),
]
# temporal.db growth by store over one drain of ours (dbstat).
STORES = {"history": 1_500_000, "mutable_state": 300_000, "visibility": 900_000, "queues": 30_000}
# Ours: 300 in 7.5 s and 300 in 8 s; the reference's: 300 in 7.5 s and 300 in 7.5 s.
DRAINS = [
    drain("ours", 0, 300, 7.5, actions=6.0, db_bytes=3_000_000, db_stores=STORES),
    drain("reference", 0, 300, 7.5, worker_rss_mb=90.0),
    drain("v1", 0, 300, 12.0, actions=8.0, db_bytes=9_000_000),
    drain("v1", 1, 300, 12.5, actions=8.0, db_bytes=9_000_000),
    drain("reference", 1, 300, 7.5, worker_rss_mb=90.0),
    drain(
        "ours", 1, 300, 8.0, worker_rss_mb=140.04, actions=6.0, db_bytes=3_600_000, db_stores=STORES
    ),
]


def test_figures_are_means_over_rounds_and_their_ratios() -> None:
    result = figures(
        PHASES,
        DRAINS,
        ack_phase(4.34, 23.46),
        MAPPING,
        api_rss=125.83,
        ack_busy=ack_phase(5.0, 212.34),
        burst={"first_answer_p50_s": 0.4321},
    )
    assert tuple(result) == (*KEYS, *OPTIONAL_KEYS)
    assert result == {
        "raw_start_rate": 250.0,
        "ingest_rate": 195.0,
        "ingest_ratio": 0.78,
        "e2e_rate": 38.8,  # (40 + 37.5) / 2 = 38.75
        "reference_rate": 40.0,
        "e2e_ratio": 0.969,
        "ack_p50_ms": 4.3,
        "ack_p99_ms": 23.5,
        "mapping_us_per_data_point": 22.07,
        "mapping_overhead_ratio": 1.2,
        "api_rss_mb": 125.8,
        "worker_rss_mb": 140.0,  # ours, after its last drain
        "ack_p99_draining_ms": 212.3,
        "e2e_vs_v1_ratio": 1.582,  # 38.75 / ((25 + 24) / 2)
        "history_events_per_request": 7.0,
        "actions_per_request": 6.0,
        "server_cpu_ms_per_request": 40.0,  # 2 × 12 s / 600 requests, no enqueue CPU given
        "temporal_bytes_per_request": 11000,  # 6.6 MB / 600
        "burst_first_answer_p50_s": 0.43,
        "temporal_history_bytes_per_request": 5000,  # 2 × 1.5 MB / 600
        "temporal_mutable_state_bytes_per_request": 1000,
        "temporal_visibility_bytes_per_request": 3000,
        "temporal_queues_bytes_per_request": 100,
    }


def test_figures_without_rates_are_zero_not_a_division_error() -> None:
    result = figures(
        [phase("raw", 0, 0), phase("ingest", 0, 0)], [], ack_phase(1.0, 2.0), MAPPING, 0.0
    )
    assert result["ingest_ratio"] == 0.0
    assert result["e2e_ratio"] == 0.0
    assert result["worker_rss_mb"] == 0.0
    assert result["e2e_vs_v1_ratio"] == 0.0
    assert result["ack_p99_draining_ms"] == 0.0  # not measured
    assert tuple(result) == KEYS  # no burst measured: no burst key


# Whole rows of the table for PHASES and DRAINS. CPU per accepted start, ms: raw, server
# (6 + 4) s / 2500 starts = 4 ms, the API none; ingest, server 10 s / 1950 = 5.13 ms, API 5.85 s /
# 1950 = 3 ms. Per drained request: worker 1.5 s / 300 = 5 ms, server 12 s / 300 = 40 ms.
ROWS = [
    "  raw starts, minimal workflow           250.0  (min 200.0, max 300.0, n=2)",
    "  ingest / raw, round by round: 0.80, 0.75",
    "    raw starts, minimal workflow        4.00 /  0.00 /  1.00",
    "    ingest: HTTP POST → 202             5.13 /  3.00 /  0.51",
    "  ours       #1   300/300      7.5s      40.0           5.00          40.00",
    "ack, open loop at 120.0/s (half the ingest rate) for 20s:",
    "mapping: 22.07 us/data point, overhead ratio 1.2 (bench/mapping.py)",
    "RSS: api 126 MB at the end, worker 140 MB after its last drain",
]
# Parts of longer rows: the drain ratios, the history shape, each ack row with its CPU shares.
PARTS = [
    "round by round ratio 1.00, 0.94",
    "ours ÷ v1 round by round 1.60, 1.56",
    "    ours         7.0 /  6.0 /   40.0 /    11000",
    "    v1           7.0 /  8.0 /   40.0 /    30000",
    "  history of one ours request: 7 events (activity_task_completed 3, ",
    "  no worker       p50    4.3 ms  p90    9.0 ms  p99   23.5 ms  max   40.0 ms",
    "server   20%  api   30%  worker    0%  load    1%",
    "  worker draining p50    5.0 ms",
    "server   80%  api   30%  worker   40%  load    1%",
]


def test_table_rows() -> None:
    lines = report_lines(
        PHASES,
        DRAINS,
        ack_phase(4.3, 23.5, server=4.0, api=6.0, load=0.2),
        ack_phase(5.0, 300.0, server=16.0, api=6.0, worker=8.0, load=0.2),
        MAPPING,
        api_rss=125.8,
        elapsed=268.4,
        mode="full",
    )
    text = "\n".join(lines)
    assert [row for row in ROWS if row not in lines] == []
    assert [part for part in PARTS if part not in text] == []
    assert "WARNING" not in text
    assert lines[-1].startswith("(full run, 268s; load average ")


def test_table_flags_a_history_that_differs_and_requests_not_successful() -> None:
    drains = [
        drain("ours", 0, 299, 7.5, other={"FAILED": 1}),
        drain("reference", 0, 300, 7.5, events={**EVENTS, "ACTIVITY_TASK_FAILED": 1.0}),
    ]
    text = "\n".join(
        report_lines(PHASES, drains, ack_phase(1, 2), None, MAPPING, 100.0, 60.0, "smoke")
    )
    assert "WARNING: the reference's history differs from ours" in text
    assert "not SUCCESS: {'FAILED': 1}" in text
    assert "worker draining" not in text  # not measured in the smoke size


def test_report_prints_the_table_and_returns_the_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = report(PHASES, DRAINS, ack_phase(4.3, 23.5), None, MAPPING, 125.8, 268.0, "quick")
    out = capsys.readouterr().out
    assert out.startswith("\nphase (no worker, concurrency 50)")
    assert "(quick run, 268s;" in out
    assert json.loads(json.dumps(result)) == figures(
        PHASES, DRAINS, ack_phase(4.3, 23.5), MAPPING, 125.8
    )


def test_helpers() -> None:
    assert mean([]) == 0.0
    assert mean([1.0, 2.0]) == 1.5
    assert spread([3.0]) == ""
    assert spread([3.0, 1.25, 2.0]) == "(min 1.2, max 3.0, n=3)"
    assert cpu_cell({"api": 2.5}, 5.0, ("api", "worker")) == "api   50%  worker    0%"
