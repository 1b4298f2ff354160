"""The database schema: one SQLAlchemy ``MetaData`` for every table.

Alembic's migrations (``persistence/migrations``) are the history of this schema;
``tests/persistence/test_tables.py`` checks that the migrated database equals it.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# A definition's backend (``careflow.models.BackendConfig``); rows from before 0003 are built-in.
BUILTIN_BACKEND = sa.text('\'{"kind": "builtin"}\'')

identifier_systems = sa.Table(
    "identifier_systems",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("system", sa.String(2048), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
)

care_flow_definitions = sa.Table(
    "care_flow_definitions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("published", sa.Boolean, nullable=False),
    sa.Column("data_point_definitions", sa.JSON, nullable=False),
    sa.Column("backend", sa.JSON, nullable=False, server_default=BUILTIN_BACKEND),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("care_flow_definition_id", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

config_revision = sa.Table(
    "config_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
)

patients = sa.Table(
    "patients",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("anonymous", sa.Boolean, nullable=False),
    sa.Column("anonymous_request_id", sa.String(128), unique=True, nullable=True),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

patient_identifiers = sa.Table(
    "patient_identifiers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id"), nullable=False),
    sa.Column("system", sa.String(2048), nullable=False),
    sa.Column("value", sa.String(1024), nullable=False),
    sa.UniqueConstraint("system", "value", name="uq_patient_identifiers_system_value"),
)

care_flows = sa.Table(
    "care_flows",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("care_flow_definition_id", sa.String(64), nullable=False),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id"), nullable=False),
    sa.Column("data_points", sa.JSON, nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
)

# Care flows started in a remote backend (Awell), keyed by request: a row is claimed before the
# remote start (``attempted_at``) and completed with the remote id after it, so a retry or reset
# finds the care flow its request already started instead of starting another one.
backend_care_flows = sa.Table(
    "backend_care_flows",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("care_flow_definition_id", sa.String(64), nullable=False),
    sa.Column("patient_id", sa.String(200), nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("care_flow_id", sa.String(200), nullable=True, unique=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    # When the last start call was sent: an unanswered call may still land until it settles.
    sa.Column("last_call_at", sa.DateTime(timezone=True), nullable=True),
)

test_payloads = sa.Table(
    "test_payloads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("payload_bytes", sa.Integer, nullable=False, server_default="0"),
)

ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("token_fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
)

retry_claims = sa.Table(
    "retry_claims",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Index("ix_patient_identifiers_patient_id", patient_identifiers.c.patient_id)
sa.Index("ix_care_flows_patient_id", care_flows.c.patient_id)
sa.Index("ix_test_payloads_webhook_id", test_payloads.c.webhook_id, test_payloads.c.id)
