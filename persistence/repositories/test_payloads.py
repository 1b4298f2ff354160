"""The last test payloads of each webhook (shown by the preview and the web pages).

A test payload is a sender's raw body, i.e. PHI: it is stored encrypted with the key ring of the
payload codec (AES-256-GCM, fresh nonce), as ``{"careflow_encrypted": {"key_id", "data"}}`` in the
``payload`` JSON column (``data``: base64 of nonce + ciphertext of the payload's JSON text).
Rows written before encryption (any other JSON) are read as they are. ``payload_bytes`` is the
plaintext's size (the byte cap counts what senders sent).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
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
TEST_PAYLOADS_MAX_BYTES = 5 * 1024 * 1024
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


@dataclass(frozen=True)
class KeptTestPayload:
    """A kept test payload with its row id (increasing) and its size as compact JSON (bytes)."""

    id: int
    item: TestPayload
    payload_bytes: int


def json_size(value: Any) -> int:
    """Size of ``value`` as compact UTF-8 JSON, in bytes."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class TestPayloadRepository:
    """The newest ``TEST_PAYLOADS_KEPT`` test payloads per webhook, at most ``max_bytes`` of
    JSON in all (the newest one is kept whatever its size).

    Args:
        db: the process's database.
        max_bytes: the byte cap per webhook (setting ``CAREFLOW_TEST_PAYLOADS_MAX_BYTES``).
        ring: the key ring the payloads are encrypted with; without one, nothing can be added
            and encrypted rows list with ``payload`` None.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, db: Database, max_bytes: int = TEST_PAYLOADS_MAX_BYTES, ring: KeyRing | None = None
    ) -> None:
        self._db = db
        self.max_bytes = max_bytes
        self._ring = ring

    # --- test payloads ----------------------------------------------------------------------

    def add_test_payload(self, item: TestPayload) -> None:
        """Keep a test request's payload, encrypted; older ones beyond the count or byte cap are
        dropped.

        Raises:
            RuntimeError: the repository has no key ring (PHI is never stored in the clear).
        """
        if self._ring is None:
            raise RuntimeError("test payloads are stored encrypted: the store needs a key ring")
        values = {**item.model_dump(), "payload": seal(self._ring, item.payload)}
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    test_payloads.insert().values(**values, payload_bytes=json_size(item.payload))
                )
                rows = conn.execute(
                    sa.select(test_payloads.c.id, test_payloads.c.payload_bytes)
                    .where(test_payloads.c.webhook_id == item.webhook_id)
                    .order_by(test_payloads.c.id.desc())
                ).all()
                total, drop = 0, []
                for n, row in enumerate(rows):
                    total += row.payload_bytes
                    if n >= TEST_PAYLOADS_KEPT or (n > 0 and total > self.max_bytes):
                        drop.append(row.id)
                if drop:
                    conn.execute(test_payloads.delete().where(test_payloads.c.id.in_(drop)))
        except IntegrityError:
            pass  # the same test delivery again: already kept

    def list_test_payloads(self, webhook_id: str) -> list[TestPayload]:
        """The kept test payloads of a webhook, newest first, decrypted.

        A row whose key id is not in the ring (or that does not authenticate) lists with
        ``payload`` None, and one ``encryption_key_not_found`` warning names the key id.
        """
        return [kept.item for kept in self.kept(webhook_id)]

    def kept(self, webhook_id: str, after_id: int = 0) -> list[KeptTestPayload]:
        """The kept test payloads of a webhook newer than row ``after_id``, newest first."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(test_payloads)
                .where(test_payloads.c.webhook_id == webhook_id, test_payloads.c.id > after_id)
                .order_by(test_payloads.c.id.desc())
            )
            return [self._kept(r) for r in rows]

    def get(self, webhook_id: str, request_id: str) -> KeptTestPayload | None:
        """One kept test payload of a webhook, or None."""
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(test_payloads).where(
                    test_payloads.c.webhook_id == webhook_id,
                    test_payloads.c.request_id == request_id,
                )
            ).first()
        return self._kept(row) if row is not None else None

    def _kept(self, row: Any) -> KeptTestPayload:
        data = row._asdict()
        item = TestPayload.model_validate(
            {
                **{k: v for k, v in data.items() if k not in ("id", "payload_bytes")},
                "received_at": aware(row.received_at),
                "payload": self._payload(row.payload),
            }
        )
        return KeptTestPayload(id=row.id, item=item, payload_bytes=row.payload_bytes)

    def _payload(self, stored: Any) -> Any:
        try:
            return unseal(self._ring, stored)
        except (KeyNotFoundError, DecryptionError) as exc:
            log.warning("%s: a kept test payload under key id %r", exc.code, exc.key_id)
            return None
