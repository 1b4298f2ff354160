"""``bench/chart.py``: the run's PNG, from phases and drains made up for the purpose."""

from __future__ import annotations

from pathlib import Path

from bench.chart import draw
from tests.bench.test_report import DRAINS, PHASES, ack_phase


def test_draws_a_png_with_and_without_the_optional_series(tmp_path: Path) -> None:
    full = draw(
        tmp_path / "full.png",
        PHASES,
        DRAINS,
        ack_phase(4.3, 23.5),
        ack_phase(5.0, 300.0),
        "title",
        ack_phase(6.0, 280.0),
    )
    bare = draw(tmp_path / "sub" / "bare.png", PHASES, [], ack_phase(4.3, 23.5), None, "t")
    for path in (full, bare):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
