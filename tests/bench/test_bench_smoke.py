"""``make bench`` in its smoke size: it starts its own stack, finishes and prints its figures.

No timing is asserted (the machine may be busy); only that every figure is there and positive.
"""

from __future__ import annotations

import json

from bench.codec import KEYS as CODEC_KEYS
from bench.report import KEYS
from tests.bench.smoke import run_bench


def test_bench_smoke_prints_every_figure() -> None:
    # The smoke size takes about 30 s (+ ~15 s for the codec on/off pair); the margin is for a
    # busy machine.
    code, stdout, stderr = run_bench(
        "run.py", prefix="BENCH_", env={"BENCH_SMOKE": "1"}, timeout=300
    )
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert tuple(figures) == (*KEYS, *CODEC_KEYS)
    for key, value in figures.items():
        assert isinstance(value, int | float) and value > 0, (key, value)
