"""Care flow backends: a definition's ``backend`` and the care flows started in remote backends.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "care_flow_definitions",
        sa.Column(
            "backend",
            sa.JSON,
            nullable=False,
            server_default=sa.text('\'{"kind": "builtin"}\''),
        ),
    )
    op.create_table(
        "backend_care_flows",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("care_flow_definition_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(200), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("care_flow_id", sa.String(200), nullable=True, unique=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("backend_care_flows")
    with op.batch_alter_table("care_flow_definitions") as batch:
        batch.drop_column("backend")
