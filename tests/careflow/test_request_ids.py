"""Request ids (workflow ids): stable per delivery, never showing the delivery id."""

from __future__ import annotations

import hashlib
import re

import pytest

from careflow.request_ids import new_request_id, request_id_for_delivery

HEX_32 = r"[0-9a-f]{32}"


def test_a_delivery_always_gets_the_same_id() -> None:
    first = request_id_for_delivery("wh_1", "msg_001")
    assert first == request_id_for_delivery("wh_1", "msg_001")
    assert re.fullmatch("req_" + HEX_32, first)


def test_the_id_is_the_documented_sha256_prefix() -> None:
    """Changing the derivation would let resends of in-flight deliveries start twice."""
    digest = hashlib.sha256(b"real\x1fwh_1\x1fmsg_001").hexdigest()
    assert request_id_for_delivery("wh_1", "msg_001") == "req_" + digest[:32]


def test_other_webhooks_deliveries_and_test_requests_get_other_ids() -> None:
    ids = {
        request_id_for_delivery("wh_1", "msg_001"),
        request_id_for_delivery("wh_2", "msg_001"),
        request_id_for_delivery("wh_1", "msg_002"),
        request_id_for_delivery("wh_1", "msg_001", test=True),
    }
    assert len(ids) == 4


def test_parts_cannot_be_shifted_between_webhook_and_delivery_id() -> None:
    assert request_id_for_delivery("wh_1", "2msg") != request_id_for_delivery("wh_12", "msg")


def test_test_requests_are_marked_and_hashed_apart() -> None:
    test_id = request_id_for_delivery("wh_1", "msg_001", test=True)
    assert re.fullmatch("test_" + HEX_32, test_id)
    assert test_id.removeprefix("test_") != request_id_for_delivery("wh_1", "msg_001")[4:]


def test_the_delivery_id_does_not_show_in_the_request_id() -> None:
    delivery_id = "MRN-1234567890-Smith"
    assert delivery_id.lower() not in request_id_for_delivery("wh_1", delivery_id).lower()


def test_fresh_ids_are_random_and_marked() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch("req_" + HEX_32, i) for i in ids)
    assert re.fullmatch("test_" + HEX_32, new_request_id(test=True))


@pytest.mark.xfail(
    strict=True,
    reason="PHI review, not fixed: the id is an unkeyed SHA-256 of the delivery id, which a "
    "webhook's delivery_id_path may read from the payload (an MRN, an appointment number); "
    "the fix (careflow.keyed_ids, as debounce windows) needs api/ingest.py and bench/chaos.py",
)
def test_a_small_delivery_id_cannot_be_found_back_from_the_request_id() -> None:
    """Workflow ids are shown to everyone who can open the Temporal UI, with the WebhookId
    search attribute beside them: trying every 5-digit value must not give the MRN back."""
    request_id = request_id_for_delivery("wh_feed", "24680")
    found = [
        candidate
        for candidate in (f"{n:05d}" for n in range(100_000))
        if "req_" + hashlib.sha256(f"real\x1fwh_feed\x1f{candidate}".encode()).hexdigest()[:32]
        == request_id
    ]
    assert found == []
