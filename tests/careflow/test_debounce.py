"""Debounce keys and window ids: PHI-free, per webhook, absent key → no debounce."""

from __future__ import annotations

import hashlib

from careflow.conditions.models import Debounce
from careflow.debounce import key_text, window_id

DEBOUNCE = Debounce(key_path="$.payload.uid", seconds=30)


def test_key_text_reads_the_first_match() -> None:
    assert key_text(DEBOUNCE, {"payload": {"uid": " tEsT1 "}}) == "tEsT1"
    assert key_text(DEBOUNCE, {"payload": {"uid": 91}}) == "91"
    assert key_text(DEBOUNCE, {"payload": {"uid": {"b": 1, "a": 2}}}) == '{"a":2,"b":1}'


def test_absent_null_or_empty_key_means_no_debounce() -> None:
    assert key_text(DEBOUNCE, {"payload": {}}) is None
    assert key_text(DEBOUNCE, {"payload": {"uid": None}}) is None
    assert key_text(DEBOUNCE, {"payload": {"uid": "  "}}) is None
    assert key_text(DEBOUNCE, [1, 2]) is None
    assert key_text(DEBOUNCE, {"payload": {"uid": {}}}) is None
    assert key_text(DEBOUNCE, {"payload": {"uid": []}}) is None
    # Documented: a number and its text are one key.
    assert key_text(DEBOUNCE, {"payload": {"uid": 12345}}) == "12345"
    assert key_text(DEBOUNCE, {"payload": {"uid": "12345"}}) == "12345"


KEY = b"test id hash key"


def test_window_ids_hash_webhook_and_key() -> None:
    first = window_id("wh_a", "MRN-24680", KEY)
    assert first == window_id("wh_a", "MRN-24680", KEY)
    assert first != window_id("wh_b", "MRN-24680", KEY)
    assert first != window_id("wh_a", "MRN-24681", KEY)
    # Keyed: without the server's key, trying every small key value finds nothing.
    assert first != window_id("wh_a", "MRN-24680", b"another key")
    plain = hashlib.sha256("\x1f".join(("debounce", "wh_a", "MRN-24680")).encode()).hexdigest()
    assert first != "debounce_" + plain[:32]
    assert first.startswith("debounce_") and len(first) == len("debounce_") + 32
    assert "24680" not in first
