"""``make bench`` in its smoke size: it starts its own stack, finishes and prints its figures.

No timing is asserted (the machine may be busy); only that every figure is there and positive.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.codec import KEYS as CODEC_KEYS
from bench.observability import KEYS as OBSERVABILITY_KEYS
from bench.report import KEYS, OPTIONAL_KEYS
from tests.bench.smoke import run_bench


def test_bench_smoke_prints_every_figure(tmp_path: Path) -> None:
    # The smoke size takes about 60 s (+ ~15 s for the codec on/off pair, ~20 s for the
    # observability pair); the margin is for a busy machine.
    code, stdout, stderr = run_bench(
        "run.py", "--out", str(tmp_path), prefix="BENCH_", env={"BENCH_SMOKE": "1"}, timeout=360
    )
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert tuple(figures)[: len(KEYS)] == KEYS
    assert set(CODEC_KEYS) | set(OBSERVABILITY_KEYS) <= set(figures)
    assert set(figures) <= set(KEYS) | set(OPTIONAL_KEYS) | set(CODEC_KEYS) | set(
        OBSERVABILITY_KEYS
    )
    for key, value in figures.items():
        assert isinstance(value, int | float), (key, value)
        # The task queues' pages may shrink over a run (freed pages reused): growth can be < 0.
        assert value > 0 or key == "temporal_queues_bytes_per_request", (key, value)
    [burst] = [line for line in stdout.splitlines() if line.startswith("burst: ")]
    assert json.loads(burst.removeprefix("burst: "))["acknowledged"] == 20  # every delivery
    [saved] = tmp_path.glob("bench-*-smoke-single.json")
    assert json.loads(saved.read_text()) == figures
    chart = saved.with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
