"""Retry claims on a real SQLite store: one winner per (request, run), released claims and
stale ones (a process died between claiming and resetting) can be claimed again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from persistence.repositories import retry_claims
from persistence.store import Store


def test_one_claim_per_run_wins_even_from_many_threads(store: Store) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        won = list(pool.map(lambda _: store.retry_claims.claim("req_a", "run_1"), range(10)))
    assert won.count(True) == 1
    assert store.retry_claims.claim("req_a", "run_2")  # the next run is another claim
    assert store.retry_claims.claim("req_b", "run_1")


def test_a_released_or_stale_claim_can_be_claimed_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.retry_claims.claim("req_a", "run_1")
    store.retry_claims.release("req_a", "run_1")
    assert store.retry_claims.claim("req_a", "run_1")
    assert not store.retry_claims.claim("req_a", "run_1")
    later = retry_claims.now() + retry_claims.STALE_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(retry_claims, "now", lambda: later)
    assert store.retry_claims.claim("req_a", "run_1")
    assert not store.retry_claims.claim("req_a", "run_1")


def test_a_retry_that_arrived_before_another_claimed_loses(store: Store) -> None:
    """Concurrent with a retry whose new run already failed again: still in progress."""
    arrived = retry_claims.now()
    assert store.retry_claims.claim("req_a", "run_1", arrived)
    assert not store.retry_claims.claim("req_a", "run_2", arrived)  # the run it reset, failed
    later = retry_claims.now()
    assert store.retry_claims.claim("req_a", "run_2", later)  # a retry sent afterwards
    assert store.retry_claims.claim("req_b", "run_1", arrived)  # another request
