"""Web-page sessions, retry claims and the size of each kept test payload.

- ``ui_sessions``: one row per signed-in ``/ui`` session, so sign-out, idle expiry and a new
  admin token end sessions on every API replica (the cookie only names the row).
- ``retry_claims``: one row per (request, run) that a retry reset; its primary key makes one of
  concurrent retries of the same run win on every replica.
- ``test_payloads.payload_bytes``: the JSON size of each kept payload, for the byte cap.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("token_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "retry_claims",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("test_payloads") as batch:
        batch.add_column(sa.Column("payload_bytes", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("test_payloads") as batch:
        batch.drop_column("payload_bytes")
    op.drop_table("retry_claims")
    op.drop_table("ui_sessions")
