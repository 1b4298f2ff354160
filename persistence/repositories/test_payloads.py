"""The last test payloads of each webhook (shown by the preview and the web pages).

A test payload is a sender's raw body, i.e. PHI: it is stored encrypted with the key ring of the
payload codec (AES-256-GCM, fresh nonce), as ``{"careflow_encrypted": {"key_id", "data"}}`` in the
``payload`` JSON column (``data``: base64 of nonce + ciphertext of the payload's JSON text).
Rows written before encryption (any other JSON) are read as they are.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from careflow.models import (
    TestPayload,
)
from infra.keyring import DecryptionError, KeyNotFoundError, KeyRing
from persistence.database import Database, aware
from persistence.tables import (
    test_payloads,
)

TEST_PAYLOADS_KEPT = 20
ENVELOPE = "careflow_encrypted"

log = logging.getLogger("careflow.store")


def seal(ring: KeyRing, payload: Any) -> dict[str, Any] | None:
    """The stored form of a JSON-able payload: encrypted under the ring's first key."""
    if payload is None:
        return None
    key_id, sealed = ring.encrypt(json.dumps(payload, separators=(",", ":")).encode())
    return {ENVELOPE: {"key_id": key_id, "data": base64.b64encode(sealed).decode()}}


def unseal(ring: KeyRing | None, stored: Any) -> Any:
    """The payload of a stored value (``seal``'s form, or plain JSON from before encryption).

    Raises:
        KeyNotFoundError / DecryptionError: its key id is not in the ring (or no ring), or
            the ciphertext does not authenticate.
    """
    if not (isinstance(stored, dict) and set(stored) == {ENVELOPE}):
        return stored
    sealed = stored[ENVELOPE]
    key_id = str(sealed.get("key_id", ""))
    if ring is None:
        raise KeyNotFoundError(key_id)
    return json.loads(ring.decrypt(key_id, base64.b64decode(sealed.get("data", ""))))


class TestPayloadRepository:
    """The newest ``TEST_PAYLOADS_KEPT`` test payloads per webhook.

    Args:
        db: the process's database.
        ring: the key ring the payloads are encrypted with; without one, nothing can be added
            and encrypted rows list with ``payload`` None.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, db: Database, ring: KeyRing | None = None) -> None:
        self._db = db
        self._ring = ring

    # --- test payloads ----------------------------------------------------------------------

    def add_test_payload(self, item: TestPayload) -> None:
        """Keep a test request's payload, encrypted; only the newest 20 per webhook are kept.

        Raises:
            RuntimeError: the repository has no key ring (PHI is never stored in the clear).
        """
        if self._ring is None:
            raise RuntimeError("test payloads are stored encrypted: the store needs a key ring")
        row = {**item.model_dump(), "payload": seal(self._ring, item.payload)}
        try:
            with self._db.transaction() as conn:
                conn.execute(test_payloads.insert().values(**row))
                keep = (
                    sa.select(test_payloads.c.id)
                    .where(test_payloads.c.webhook_id == item.webhook_id)
                    .order_by(test_payloads.c.id.desc())
                    .limit(TEST_PAYLOADS_KEPT)
                )
                conn.execute(
                    test_payloads.delete().where(
                        test_payloads.c.webhook_id == item.webhook_id,
                        test_payloads.c.id.not_in(keep.scalar_subquery()),
                    )
                )
        except IntegrityError:
            pass  # the same test delivery again: already kept

    def list_test_payloads(self, webhook_id: str) -> list[TestPayload]:
        """The kept test payloads of a webhook, newest first, decrypted.

        A row whose key id is not in the ring (or that does not authenticate) lists with
        ``payload`` None, and one ``encryption_key_not_found`` warning names the key id.
        """
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(test_payloads)
                .where(test_payloads.c.webhook_id == webhook_id)
                .order_by(test_payloads.c.id.desc())
            )
            return [
                TestPayload.model_validate(
                    {
                        **r._asdict(),
                        "received_at": aware(r.received_at),
                        "payload": self._payload(r.payload),
                    }
                )
                for r in rows
            ]

    def _payload(self, stored: Any) -> Any:
        try:
            return unseal(self._ring, stored)
        except (KeyNotFoundError, DecryptionError) as exc:
            log.warning("%s: a kept test payload under key id %r", exc.code, exc.key_id)
            return None
