"""The last test payloads of each webhook (shown by the preview and the web pages)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from careflow.models import (
    TestPayload,
)
from persistence.database import Database, aware
from persistence.tables import (
    test_payloads,
)

TEST_PAYLOADS_KEPT = 20
TEST_PAYLOADS_MAX_BYTES = 5 * 1024 * 1024


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
    """

    __test__ = False  # not a pytest test class

    def __init__(self, db: Database, max_bytes: int = TEST_PAYLOADS_MAX_BYTES) -> None:
        self._db = db
        self.max_bytes = max_bytes

    # --- test payloads ----------------------------------------------------------------------

    def add_test_payload(self, item: TestPayload) -> None:
        """Keep a test request's payload; older ones beyond the count or byte cap are dropped."""
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    test_payloads.insert().values(
                        **item.model_dump(), payload_bytes=json_size(item.payload)
                    )
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
        """The kept test payloads of a webhook, newest first."""
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

    @staticmethod
    def _kept(row: Any) -> KeptTestPayload:
        data = row._asdict()
        item = TestPayload.model_validate(
            {
                **{k: v for k, v in data.items() if k not in ("id", "payload_bytes")},
                "received_at": aware(row.received_at),
            }
        )
        return KeptTestPayload(id=row.id, item=item, payload_bytes=row.payload_bytes)
