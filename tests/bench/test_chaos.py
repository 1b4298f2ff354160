"""``bench/chaos.py``: the overload 503s read back from the API's log."""

from __future__ import annotations

from bench.chaos import overloaded_503s


def test_overloaded_503s_sums_the_counts_the_warnings_carry() -> None:
    line = "WARNING overloaded: no workflow start slot free; answered 503 to {} request(s)"
    log = "\n".join([line.format(12), "INFO other", line.format(3)])
    assert overloaded_503s(log) == 15
    assert overloaded_503s("") == 0
