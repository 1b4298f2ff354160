"""Test payloads: the last 20 test requests of each webhook, for building mappings.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_payloads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False, unique=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=True),
    )
    op.create_index("ix_test_payloads_webhook_id", "test_payloads", ["webhook_id", "id"])


def downgrade() -> None:
    op.drop_table("test_payloads")
