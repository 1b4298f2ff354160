"""Retry claims: one row per (request, run) a retry resets, shared by every API replica.

Concurrent retries of one request all read the same latest run; the first to insert its
(request_id, run_id) row wins and resets it, the others hit the primary key and are told a
retry is in progress. So is a retry that arrived before another retry of the same request
claimed (it was concurrent with it, even if that retry's run has already failed again). A
reset that fails gives its claim back; one left by a process that died
is taken over after ``STALE_AFTER``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from persistence.database import Database, now
from persistence.tables import retry_claims

# A reset is one RPC (seconds); a claim this old was left by a process that died meanwhile.
STALE_AFTER = timedelta(seconds=60)


class RetryClaimRepository:
    """Args: db: the process's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, request_id: str, run_id: str, arrived: datetime | None = None) -> bool:
        """Claim the reset of one run; True for exactly one caller per (request, run).

        Args:
            request_id: the request (workflow id).
            run_id: its latest run, which the caller means to reset.
            arrived: when the caller's retry arrived; a retry of the same request claimed since
                then was concurrent with it (its run may even have ended already), so this one
                loses too. None skips that check.

        A claim older than ``STALE_AFTER`` whose run is still the latest (the API process died
        between claiming and resetting) is taken over, by one caller only.
        """
        try:
            with self._db.transaction() as conn:
                if arrived is not None:
                    since = conn.execute(
                        sa.select(retry_claims.c.run_id).where(
                            retry_claims.c.request_id == request_id,
                            retry_claims.c.claimed_at >= arrived,
                        )
                    ).first()
                    if since is not None:
                        return False
                conn.execute(
                    retry_claims.delete().where(
                        retry_claims.c.request_id == request_id,
                        retry_claims.c.run_id == run_id,
                        retry_claims.c.claimed_at < now() - STALE_AFTER,
                    )
                )
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
