"""The last test payloads of each webhook (shown by the preview and the web pages)."""

from __future__ import annotations

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


class TestPayloadRepository:
    """The newest ``TEST_PAYLOADS_KEPT`` test payloads per webhook.

    Args:
        db: the process's database.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- test payloads ----------------------------------------------------------------------

    def add_test_payload(self, item: TestPayload) -> None:
        """Keep a test request's payload; only the newest 20 per webhook are kept."""
        try:
            with self._db.transaction() as conn:
                conn.execute(test_payloads.insert().values(**item.model_dump()))
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
        """The kept test payloads of a webhook, newest first."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(test_payloads)
                .where(test_payloads.c.webhook_id == webhook_id)
                .order_by(test_payloads.c.id.desc())
            )
            return [
                TestPayload.model_validate({**r._asdict(), "received_at": aware(r.received_at)})
                for r in rows
            ]
