"""Kept test payloads on a real SQLite store: newest first, per webhook, each delivery once.

The HTTP test link keeping 20 is covered by ``tests/api/test_test_link.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from careflow.models import RequestStatus, TestPayload
from persistence.repositories.test_payloads import json_size
from persistence.store import TEST_PAYLOADS_KEPT, Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def payload(webhook_id: str, n: int, **overrides: Any) -> TestPayload:
    fields: dict[str, Any] = {
        "webhook_id": webhook_id,
        "request_id": f"test_{webhook_id}_{n}",
        "received_at": T0 + timedelta(seconds=n),
        "verdict": RequestStatus.SCHEDULED,
        "payload": {"n": n},
    }
    return TestPayload(**{**fields, **overrides})


def test_payloads_round_trip_newest_first(store: Store) -> None:
    kept = [
        payload("wh_a", 1),
        payload("wh_a", 2, verdict=RequestStatus.REJECTED, payload=[1, "two", None]),
        payload("wh_a", 3, payload=None),
    ]
    for item in kept:
        store.test_payloads.add_test_payload(item)
    listed = store.test_payloads.list_test_payloads("wh_a")
    assert listed == kept[::-1]
    assert all(item.received_at.tzinfo is not None for item in listed)


def test_the_same_test_delivery_is_kept_once(store: Store) -> None:
    store.test_payloads.add_test_payload(payload("wh_a", 1))
    store.test_payloads.add_test_payload(payload("wh_a", 1, payload={"n": "resent"}))
    assert store.test_payloads.list_test_payloads("wh_a") == [payload("wh_a", 1)]


def test_the_limit_applies_per_webhook(store: Store) -> None:
    store.test_payloads.add_test_payload(payload("wh_b", 0))
    for n in range(TEST_PAYLOADS_KEPT + 2):
        store.test_payloads.add_test_payload(payload("wh_a", n))
    kept = store.test_payloads.list_test_payloads("wh_a")
    assert [p.payload["n"] for p in kept] == list(range(TEST_PAYLOADS_KEPT + 1, 1, -1))
    assert store.test_payloads.list_test_payloads("wh_b") == [payload("wh_b", 0)]
    assert store.test_payloads.list_test_payloads("wh_c") == []


def test_kept_payloads_have_a_byte_cap_as_well_as_a_count_cap(tmp_path: Path) -> None:
    """Issue 15 finding 4: the newest payloads within the byte cap are kept; the newest one is
    kept whatever its size."""
    store = Store(f"sqlite:///{tmp_path / 'app.db'}", test_payloads_max_bytes=10_000)
    store.migrate()
    try:
        blob = "x" * 3_000  # about 3 kB of JSON each
        for n in range(6):
            store.test_payloads.add_test_payload(payload("wh_a", n, payload={"n": n, "b": blob}))
        kept = store.test_payloads.kept("wh_a")
        assert [k.item.payload["n"] for k in kept] == [5, 4, 3]
        assert sum(k.payload_bytes for k in kept) <= 10_000
        assert all(k.payload_bytes == json_size(k.item.payload) for k in kept)
        huge = {"n": 6, "b": "y" * 20_000}
        store.test_payloads.add_test_payload(payload("wh_a", 6, payload=huge))
        assert [p.payload["n"] for p in store.test_payloads.list_test_payloads("wh_a")] == [6]
    finally:
        store.dispose()


def test_kept_after_a_row_id_lists_only_newer_payloads(store: Store) -> None:
    for n in range(3):
        store.test_payloads.add_test_payload(payload("wh_a", n))
    first, *_ = store.test_payloads.kept("wh_a")[::-1]
    newer = store.test_payloads.kept("wh_a", after_id=first.id)
    assert [k.item.payload["n"] for k in newer] == [2, 1]
    assert store.test_payloads.kept("wh_a", after_id=newer[0].id) == []
    assert store.test_payloads.get("wh_a", "test_wh_a_1") == newer[1]
    assert store.test_payloads.get("wh_b", "test_wh_a_1") is None
