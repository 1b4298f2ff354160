"""Retry claims: one row per (request, run) a retry resets, shared by every API replica.

Concurrent retries of one request all read the same latest run; the first to insert its
(request_id, run_id) row wins and resets it, the others hit the primary key and are told a
retry is in progress. A reset that fails gives its claim back.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from persistence.database import Database, now
from persistence.tables import retry_claims


class RetryClaimRepository:
    """Args: db: the process's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, request_id: str, run_id: str) -> bool:
        """Claim the reset of one run; True for exactly one caller per (request, run)."""
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    retry_claims.insert().values(
                        request_id=request_id, run_id=run_id, claimed_at=now()
                    )
                )
        except IntegrityError:
            return False
        return True

    def release(self, request_id: str, run_id: str) -> None:
        """Give a claim back (the reset it guarded did not happen)."""
        with self._db.transaction() as conn:
            conn.execute(
                retry_claims.delete().where(
                    retry_claims.c.request_id == request_id, retry_claims.c.run_id == run_id
                )
            )
