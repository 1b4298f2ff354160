"""Server-side records of ``/ui`` sessions, so every API replica can end one.

The cookie carries a random session id; the table keeps only its SHA-256 (a copy of the table
opens no session), the fingerprint of the admin token it was signed in with, and two times.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from persistence.database import Database, aware, now
from persistence.tables import ui_sessions

# A session's ``last_seen_at`` is written at most this often (one write per page view saved),
# and at most every third of the idle expiry, so a short expiry cannot end an active session.
TOUCH_EVERY = timedelta(seconds=30)


def touch_every(idle: timedelta) -> timedelta:
    """How stale ``last_seen_at`` may get: ``min(TOUCH_EVERY, idle / 3)``."""
    return min(TOUCH_EVERY, idle / 3)


class UiSessionRepository:
    """Create, check (sliding idle expiry) and delete ``/ui`` sessions.

    Args:
        db: the process's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, id_hash: str, token_fingerprint: str, idle: timedelta) -> None:
        """Record a new session; drop every session idle for longer than ``idle`` or signed in
        with another admin token.

        Args:
            id_hash: SHA-256 hex of the session id (64 chars).
            token_fingerprint: fingerprint of the admin token the session signed in with.
            idle: the idle expiry; older sessions are purged on the way.
        """
        at = now()
        with self._db.transaction() as conn:
            conn.execute(
                ui_sessions.delete().where(
                    (ui_sessions.c.last_seen_at < at - idle)
                    | (ui_sessions.c.token_fingerprint != token_fingerprint)
                )
            )
            conn.execute(
                ui_sessions.insert().values(
                    id_hash=id_hash,
                    token_fingerprint=token_fingerprint,
                    created_at=at,
                    last_seen_at=at,
                )
            )

    def touch(self, id_hash: str, token_fingerprint: str, idle: timedelta) -> bool:
        """Whether the session is live; a live one's idle clock restarts, a dead one is deleted.

        A session is dead when it was deleted (sign-out), was signed in with another admin
        token, or was last seen more than ``idle`` ago.
        """
        at = now()
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(ui_sessions.c.token_fingerprint, ui_sessions.c.last_seen_at).where(
                    ui_sessions.c.id_hash == id_hash
                )
            ).first()
            if row is None:
                return False
            last_seen = aware(row.last_seen_at)
            if row.token_fingerprint != token_fingerprint or at - last_seen > idle:
                conn.execute(ui_sessions.delete().where(ui_sessions.c.id_hash == id_hash))
                return False
            if at - last_seen >= touch_every(idle):
                conn.execute(
                    ui_sessions.update()
                    .where(ui_sessions.c.id_hash == id_hash)
                    .values(last_seen_at=at)
                )
            return True

    def delete_other_tokens(self, token_fingerprint: str) -> int:
        """Delete every session signed in with another admin token; how many.

        Run at startup, so a session ended by a token change stays ended even when the old
        token comes back later.
        """
        with self._db.transaction() as conn:
            result = conn.execute(
                ui_sessions.delete().where(ui_sessions.c.token_fingerprint != token_fingerprint)
            )
        return int(result.rowcount or 0)

    def delete(self, id_hash: str) -> None:
        """End one session for good (sign-out)."""
        with self._db.transaction() as conn:
            conn.execute(ui_sessions.delete().where(ui_sessions.c.id_hash == id_hash))

    def count(self) -> int:
        """Sessions recorded (live or not yet purged)."""
        with self._db.transaction() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(ui_sessions)).scalar()
        return int(count or 0)
