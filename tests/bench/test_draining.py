"""``bench/draining.py``: the quantile read from two readings of a Prometheus histogram."""

from __future__ import annotations

from bench.draining import quantile_ms


def test_quantile_is_the_bucket_bound_holding_it_between_two_readings() -> None:
    before = {0.1: 5.0, 0.5: 5.0, 1.0: 5.0, float("inf"): 5.0}
    after = {0.1: 15.0, 0.5: 100.0, 1.0: 104.0, float("inf"): 105.0}
    # 100 new observations: 10 under 0.1 s, 85 more under 0.5 s, 4 under 1 s, 1 above.
    assert quantile_ms(before, after, 0.05) == 100.0
    assert quantile_ms(before, after, 0.5) == 500.0
    assert quantile_ms(before, after, 0.99) == 1000.0
    assert quantile_ms(before, after, 1.0) == float("inf")
    assert quantile_ms(after, after, 0.5) == -1.0
