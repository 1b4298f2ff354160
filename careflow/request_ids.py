"""Request ids, which are the Temporal workflow ids of requests: never PHI, a hash or random.

A delivery's id is derived from (webhook id, delivery id), so a duplicate delivery maps to the
same workflow id and Temporal refuses to start it twice. The derivation is keyed (HMAC-SHA-256
with the server's id hash key, :mod:`careflow.keyed_ids`): a delivery id read from the body by
``delivery_id_path`` may be an MRN or an appointment number, and an unkeyed hash of so small a
value space is reversed by trying every value against the ids the Temporal UI lists.
"""

from __future__ import annotations

import uuid

from careflow.keyed_ids import keyed_hash


def request_id_for_delivery(
    webhook_id: str, delivery_id: str, *, hash_key: bytes, test: bool = False
) -> str:
    """The workflow id of a delivery: a keyed hash, so no delivery id (possibly PHI) shows in
    ids or can be found back from them.

    Args:
        webhook_id: the webhook's id.
        delivery_id: the sender's delivery id (``webhook-id``, ``Idempotency-Key``, body path).
        hash_key: the id hash key (:func:`careflow.keyed_ids.id_hash_key`); every API replica
            must share it, or a resend reaching another replica would start a second request.
        test: a test request; hashes ("test", webhook id, delivery id) so it never collides.

    Returns:
        ``req_`` or ``test_`` followed by 32 hex digits (128 bits of HMAC-SHA-256 of
        ("request", "real" or "test", webhook id, delivery id)).
    """
    digest = keyed_hash(hash_key, "request", "test" if test else "real", webhook_id, delivery_id)
    return ("test_" if test else "req_") + digest[:32]


def new_request_id(*, test: bool = False) -> str:
    """A fresh random request id for a request without a delivery id."""
    return ("test_" if test else "req_") + uuid.uuid4().hex
