"""A bench run's size (``BENCH_SMOKE`` / ``BENCH_QUICK`` / full), the machine it runs on, and
``bench/mapping.py`` run first (``bench/run.py``)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cli

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    rounds: int  # raw / ingest rounds (alternating)
    warmup: float  # seconds before each counted window
    window: float  # counted seconds per raw / ingest phase
    e2e_requests: int  # requests per drain
    e2e_rounds: int  # drains of each kind (ours, reference)
    drain_timeout: float  # seconds a drain may take at most
    ack_seconds: float  # open-loop counted seconds
    mapping_args: tuple[str, ...]
    burst: int  # deliveries sent at once at the end (make chaos's sender), 0: none


# Many short rounds, interleaved in ABBA order and even in number, rather than a few long ones:
# other work on the machine comes and goes, and the Temporal database grows as the run goes on.
SIZES = {
    "full": Sizes(6, 1.5, 5.0, 300, 4, 300.0, 20.0, (), 2000),
    "quick": Sizes(2, 0.5, 4.0, 150, 2, 120.0, 8.0, ("--rounds", "9", "--batch", "40"), 500),
    "smoke": Sizes(1, 0.5, 1.5, 24, 1, 40.0, 2.0, ("--rounds", "3", "--batch", "5"), 20),
}


def bench_mode() -> str:
    """``smoke`` (``BENCH_SMOKE``), ``quick`` (``BENCH_QUICK``) or ``full``."""
    if os.environ.get("BENCH_SMOKE"):
        return "smoke"
    if os.environ.get("BENCH_QUICK"):
        return "quick"
    return "full"


def cpu_model() -> str:
    """The CPU's model name (psutil has none: ``/proc/cpuinfo``), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def temporal_version() -> str:
    """The ``temporal`` CLI's version line(s), as it prints them."""
    with contextlib.suppress(Exception):
        answer = subprocess.run(
            [cli.temporal_binary(), "--version"], capture_output=True, text=True, timeout=10
        )
        return answer.stdout.strip()
    return "temporal ?"


def run_mapping(sizes: Sizes) -> dict[str, float]:
    """Run ``bench/mapping.py`` (its table is printed); its figures, from its last JSON line."""
    answer = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mapping.py"), *sizes.mapping_args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
    )
    lines = answer.stdout.strip().splitlines()
    print("bench/mapping.py:", *(f"  {line}" for line in lines[:-1]), sep="\n", flush=True)
    return dict(json.loads(lines[-1]))
