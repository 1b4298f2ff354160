"""Request ids (workflow ids): stable per delivery, never showing the delivery id."""

from __future__ import annotations

import hashlib
import hmac
import re

from careflow import request_ids
from careflow.request_ids import new_request_id

HEX_32 = r"[0-9a-f]{32}"
KEY = b"test-id-hash-key"


def request_id_for_delivery(webhook_id: str, delivery_id: str, *, test: bool = False) -> str:
    return request_ids.request_id_for_delivery(webhook_id, delivery_id, hash_key=KEY, test=test)


def test_a_delivery_always_gets_the_same_id() -> None:
    first = request_id_for_delivery("wh_1", "msg_001")
    assert first == request_id_for_delivery("wh_1", "msg_001")
    assert re.fullmatch("req_" + HEX_32, first)


def test_the_id_is_the_documented_hmac_prefix() -> None:
    """Changing the derivation would let resends of in-flight deliveries start twice."""
    digest = hmac.new(KEY, b"request\x1freal\x1fwh_1\x1fmsg_001", hashlib.sha256).hexdigest()
    assert request_id_for_delivery("wh_1", "msg_001") == "req_" + digest[:32]


def test_another_key_gives_other_ids() -> None:
    other = request_ids.request_id_for_delivery("wh_1", "msg_001", hash_key=b"another key")
    assert other != request_id_for_delivery("wh_1", "msg_001")


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


def test_a_small_delivery_id_cannot_be_found_back_from_the_request_id() -> None:
    """Workflow ids are shown to everyone who can open the Temporal UI, with the WebhookId
    search attribute beside them: trying every 5-digit value (hashed as an unkeyed id would
    be) must not give the MRN back."""
    request_id = request_id_for_delivery("wh_feed", "24680")
    found = [
        candidate
        for candidate in (f"{n:05d}" for n in range(100_000))
        if "req_" + hashlib.sha256(f"real\x1fwh_feed\x1f{candidate}".encode()).hexdigest()[:32]
        == request_id
    ]
    assert found == []
