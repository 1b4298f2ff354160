"""``make chaos`` in its smoke size: worker, API and Temporal are SIGKILLed and restarted while a
retrying sender posts a few dozen requests; nothing acknowledged is lost or done twice.

The smoke size takes about 20 s (at most 45 s); no timing is asserted, the timeout is a guard.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chaos_smoke_loses_nothing_and_duplicates_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env["CHAOS_SMOKE"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "chaos.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the bench stops its stack on SIGTERM
        try:
            stdout, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()  # its children die with it (PR_SET_PDEATHSIG)
            stdout, stderr = process.communicate()
        raise AssertionError("the chaos smoke run did not finish:\n" + stderr[-3000:]) from None
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["mode"] == "chaos" and result["scale"] == "smoke"
    assert result["acknowledged"] > 0
    assert result["lost"] == 0, result
    assert result["duplicate_care_flows"] == 0, result
    assert result["duplicate_patients"] == 0, result
    assert result["missing_care_flows"] == 0, result
    assert result["misattributed_care_flows"] == 0, result
    assert result["unexpected_exits"] == [], result
    assert {k["component"] for k in result["kills"]} == {"worker", "api", "temporal"}, result
