"""Request ids, which are the Temporal workflow ids of requests: never PHI, a hash or random.

A delivery's id is derived from (webhook id, delivery id), so a duplicate delivery maps to the
same workflow id and Temporal refuses to start it twice.
"""

from __future__ import annotations

import hashlib
import uuid


def request_id_for_delivery(webhook_id: str, delivery_id: str, *, test: bool = False) -> str:
    """The workflow id of a delivery: a hash, so no delivery id (possibly PHI) shows in ids.

    Args:
        webhook_id: the webhook's id.
        delivery_id: the sender's delivery id (``webhook-id``, ``Idempotency-Key``, body path).
        test: a test request; hashes ("test", webhook id, delivery id) so it never collides.

    Returns:
        ``req_`` or ``test_`` followed by 32 hex digits (128 bits of SHA-256).
    """
    parts = ("test" if test else "real", webhook_id, delivery_id)
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return ("test_" if test else "req_") + digest


def new_request_id(*, test: bool = False) -> str:
    """A fresh random request id for a request without a delivery id."""
    return ("test_" if test else "req_") + uuid.uuid4().hex
