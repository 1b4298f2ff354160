"""``bench/observability.py``'s "off" app really has no per-request observability: every
per-request metric of ``ApiMetrics`` is a no-op there (a metric added later and not nulled would
make the comparison unfair)."""

from __future__ import annotations

import sys

from prometheus_client.metrics import MetricWrapperBase

from api.metrics import ApiMetrics
from tests.factories import ROOT


def test_the_off_app_nulls_every_per_request_metric() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench import observability_off
    finally:
        sys.path.remove(str(ROOT))
    real = ApiMetrics()
    per_request = {
        name
        for name, value in vars(real).items()
        if isinstance(value, MetricWrapperBase) and name != "cache_age"  # a callback gauge
    }
    nulled = observability_off.NullMetrics()
    assert per_request == set(observability_off._METRICS)
    for name in per_request:
        assert not isinstance(getattr(nulled, name), MetricWrapperBase), name
    assert nulled.observe_answer is not None
