"""``make chaos`` in its smoke size: worker, API and Temporal are SIGKILLed and restarted while a
retrying sender posts a few dozen requests; nothing acknowledged is lost or done twice.

The smoke size takes about 20 s (at most 45 s); no timing is asserted, the timeout is a guard.
"""

from __future__ import annotations

import json

from tests.bench.smoke import run_bench


def test_chaos_smoke_loses_nothing_and_duplicates_nothing() -> None:
    code, stdout, stderr = run_bench(
        "chaos.py", prefix="CHAOS_", env={"CHAOS_SMOKE": "1"}, timeout=180
    )
    assert code == 0, stdout[-3000:] + stderr[-3000:]
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
    assert result["restarts"] == {"temporal": 1, "worker": 1, "api": 1}, result
