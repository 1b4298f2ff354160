"""The benches' smoke runs: a bench script in a subprocess, its size set by the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(
    script: str, *args: str, prefix: str, env: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run ``bench/<script>`` with the caller's environment less ``prefix*`` plus ``env``.

    On ``timeout`` (seconds) the bench gets SIGTERM (it stops its stack), then SIGKILL (its
    children die with it: PR_SET_PDEATHSIG), and the test fails with its stderr's tail.

    Returns:
        Exit status, stdout, stderr.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith(prefix)} | env
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        raise AssertionError(f"bench/{script} did not finish:\n" + stderr[-3000:]) from None
    return process.returncode, stdout, stderr
