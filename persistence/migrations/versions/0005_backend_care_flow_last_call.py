"""Remote care flows: when the last start call was sent (an unanswered call may still land).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "backend_care_flows",
        sa.Column("last_call_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("backend_care_flows") as batch:
        batch.drop_column("last_call_at")
