"""``make bench`` in its smoke size: it starts its own stack, finishes and prints its figures.

No timing is asserted (the machine may be busy); only that every figure is there and positive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
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
}


def test_bench_smoke_prints_every_figure() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["BENCH_SMOKE"] = "1"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,  # the smoke size takes about 30 s; the margin is for a busy machine
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == KEYS
    for key, value in figures.items():
        assert isinstance(value, int | float) and value > 0, (key, value)
