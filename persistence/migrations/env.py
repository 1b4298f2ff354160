"""Alembic environment: runs on the engine handed over by ``Store.migrate``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from persistence.tables import metadata

config = context.config
engine = config.attributes.get("engine") or sa.create_engine(
    config.get_main_option("sqlalchemy.url") or "sqlite://"
)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
