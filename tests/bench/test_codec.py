"""``codec_e2e_ratio``'s arithmetic (``bench/codec.py``): ABBA blocks, median over blocks."""

from __future__ import annotations

from bench.codec import is_codec_on, summarize


def test_rounds_alternate_abba() -> None:
    assert [is_codec_on(i) for i in range(8)] == [True, False, False, True] * 2


def test_a_linear_drift_cancels_within_each_block() -> None:
    # Same cost on both sides while the machine slows down round after round: ratio 1.
    rounds = [(is_codec_on(i), 100, 5.0 + i, 1.0 + i / 10) for i in range(8)]
    figures = summarize(rounds)
    assert (figures["codec_e2e_ratio"], figures["codec_cpu_ratio"]) == (1.0, 1.0)


def test_one_disturbed_block_does_not_decide_the_ratio() -> None:
    on_costs_5_percent = [
        (on, 100, 10.5 if on else 10.0, 2.1 if on else 2.0) for on in map(is_codec_on, range(8))
    ]
    disturbed = [(True, 100, 30.0, 5.0), (False, 100, 10.0, 2.0)] * 2
    figures = summarize([*on_costs_5_percent, *disturbed])
    assert figures["codec_e2e_ratio"] == round(10 / 10.5, 3)
    assert figures["codec_cpu_ratio"] == 1.05
    assert figures["codec_off_rate"] == 10.0


def test_incomplete_blocks_are_left_out() -> None:
    assert summarize([(True, 100, 10.0, 1.0), (False, 100, 10.0, 1.0)])["codec_e2e_ratio"] == 0.0
