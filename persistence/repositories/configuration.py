"""Configuration: identifier systems, care flow definitions and webhooks.

Every write bumps the configuration revision in the same transaction, so each process's
config cache sees the change at its next revision check.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from careflow.errors import ConflictError, not_found
from careflow.models import (
    CareFlowDefinition,
    IdentifierSystem,
    RequestError,
    Webhook,
)
from careflow.snapshot import ConfigSnapshot
from careflow.text import scrub
from persistence.database import Database, aware, now
from persistence.tables import (
    care_flow_definitions,
    config_revision,
    identifier_systems,
    patient_identifiers,
    webhooks,
)


def new_webhook_id() -> str:
    """An unguessable, URL-safe webhook id: 160 random bits (≥ 128 asked for)."""
    return "wh_" + secrets.token_urlsafe(20)


class ConfigurationRepository:
    """Identifier systems, care flow definitions and webhooks.

    Args:
        db: the process's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def _tx(self, conn: Connection | None) -> Any:
        """``conn`` when the caller holds a transaction, else a new one."""
        return nullcontext(conn) if conn is not None else self._db.transaction()

    @contextmanager
    def locked(self) -> Iterator[Connection]:
        """A configuration write transaction serialised with every other one.

        Its first statement bumps the configuration revision, so it takes the one write lock
        first: on PostgreSQL the row lock on ``config_revision`` (every other ``locked``
        transaction, in any API replica, waits for the commit and then reads what it wrote); on
        SQLite the database write lock (waiting on the busy timeout), taken before any read so
        the transaction's snapshot is current. Reads done through ``conn`` afterwards
        (``snapshot``, ``get_webhook``) therefore see the state the write will change:
        check-then-write races (enable gate vs a definition edit) cannot interleave. An
        exception rolls back everything, the bump included.

        Raises:
            TransientStoreError: the database is unavailable or the lock wait timed out.
        """
        with self._db.transaction() as conn:
            self._db.bump_revision(conn)
            yield conn

    def snapshot(self, conn: Connection) -> ConfigSnapshot:
        """All configuration as ``conn`` sees it (deleted webhooks included)."""
        revision = conn.execute(sa.select(config_revision.c.revision)).scalar()
        return ConfigSnapshot(
            revision=int(revision or 0),
            webhooks={w.id: w for w in self.list_webhooks(include_deleted=True, conn=conn)},
            definitions={d.id: d for d in self.list_care_flow_definitions(conn=conn)},
            identifier_systems={s.name: s for s in self.list_identifier_systems(conn=conn)},
        )

    # --- identifier systems -----------------------------------------------------------------

    def list_identifier_systems(self, conn: Connection | None = None) -> list[IdentifierSystem]:
        with self._tx(conn) as conn:
            rows = conn.execute(sa.select(identifier_systems).order_by(identifier_systems.c.name))
            return [IdentifierSystem.model_validate(scrub(r._asdict())) for r in rows]

    def get_identifier_system(self, name: str) -> IdentifierSystem:
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(identifier_systems).where(identifier_systems.c.name == name)
            ).first()
        if row is None:
            raise not_found("identifier system", "identifier_system_not_found")
        return IdentifierSystem.model_validate(scrub(row._asdict()))

    def create_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        try:
            with self._db.transaction() as conn:
                conn.execute(identifier_systems.insert().values(**item.model_dump()))
                self._db.bump_revision(conn)
        except IntegrityError as exc:
            raise ConflictError(
                RequestError(
                    code="identifier_system_exists",
                    message="an identifier system with this name or system URI exists",
                )
            ) from exc
        return item

    def update_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        current = self.get_identifier_system(item.name)
        if current.system != item.system and self._system_in_use(current.system):
            raise ConflictError(
                RequestError(
                    code="identifier_system_in_use",
                    message="the system URI is used by a webhook or a patient; it cannot change",
                )
            )
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    identifier_systems.update()
                    .where(identifier_systems.c.name == item.name)
                    .values(system=item.system, description=item.description)
                )
                self._db.bump_revision(conn)
        except IntegrityError as exc:
            raise ConflictError(
                RequestError(code="identifier_system_exists", message="system URI already used")
            ) from exc
        return item

    def delete_identifier_system(self, name: str) -> None:
        current = self.get_identifier_system(name)
        if self._system_in_use(current.system):
            raise ConflictError(
                RequestError(
                    code="identifier_system_in_use",
                    message="the identifier system is used by a webhook or a patient",
                )
            )
        with self._db.transaction() as conn:
            conn.execute(identifier_systems.delete().where(identifier_systems.c.name == name))
            self._db.bump_revision(conn)

    def _system_in_use(self, system: str) -> bool:
        with self._db.transaction() as conn:
            used_by_patient = conn.execute(
                sa.select(patient_identifiers.c.id).where(patient_identifiers.c.system == system)
            ).first()
        if used_by_patient:
            return True
        return any(
            hook.patient_identifier is not None and hook.patient_identifier.system == system
            for hook in self.list_webhooks()
        )

    # --- care flow definitions --------------------------------------------------------------

    def list_care_flow_definitions(
        self, conn: Connection | None = None
    ) -> list[CareFlowDefinition]:
        with self._tx(conn) as conn:
            rows = conn.execute(
                sa.select(care_flow_definitions).order_by(care_flow_definitions.c.id)
            )
            return [CareFlowDefinition.model_validate(scrub(r._asdict())) for r in rows]

    def get_care_flow_definition(self, definition_id: str) -> CareFlowDefinition:
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(care_flow_definitions).where(care_flow_definitions.c.id == definition_id)
            ).first()
        if row is None:
            raise not_found("care flow definition", "care_flow_definition_not_found")
        return CareFlowDefinition.model_validate(scrub(row._asdict()))

    def create_care_flow_definition(self, item: CareFlowDefinition) -> CareFlowDefinition:
        try:
            with self._db.transaction() as conn:
                conn.execute(care_flow_definitions.insert().values(**item.model_dump(mode="json")))
                self._db.bump_revision(conn)
        except IntegrityError as exc:
            raise ConflictError(
                RequestError(
                    code="care_flow_definition_exists",
                    message="a care flow definition with this id exists",
                )
            ) from exc
        return item

    def update_care_flow_definition(
        self,
        item: CareFlowDefinition,
        disable_webhook_ids: Sequence[str] = (),
        conn: Connection | None = None,
    ) -> CareFlowDefinition:
        """Replace a definition; ``disable_webhook_ids`` are disabled in the same transaction."""
        values = item.model_dump(mode="json")
        with self._tx(conn) as conn:
            updated = conn.execute(
                care_flow_definitions.update()
                .where(care_flow_definitions.c.id == item.id)
                .values(**values)
            )
            if updated.rowcount == 0:
                raise not_found("care flow definition", "care_flow_definition_not_found")
            if disable_webhook_ids:
                conn.execute(
                    webhooks.update()
                    .where(webhooks.c.id.in_(list(disable_webhook_ids)))
                    .values(enabled=False, updated_at=now())
                )
            self._db.bump_revision(conn)
        return item

    # --- webhooks ---------------------------------------------------------------------------

    @staticmethod
    def _webhook(row: Any) -> Webhook:
        # scrub: rows saved before lone surrogates were refused still load (careflow.text).
        data = scrub(dict(row.config))
        data.update(
            id=row.id,
            care_flow_definition_id=row.care_flow_definition_id,
            enabled=row.enabled,
            deleted=row.deleted,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )
        return Webhook.model_validate(data)

    @staticmethod
    def _webhook_config(hook: Webhook) -> dict[str, Any]:
        return hook.model_dump(
            mode="json",
            exclude={
                "id",
                "care_flow_definition_id",
                "enabled",
                "deleted",
                "created_at",
                "updated_at",
            },
        )

    def list_webhooks(
        self, include_deleted: bool = False, conn: Connection | None = None
    ) -> list[Webhook]:
        query = sa.select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        if not include_deleted:
            query = query.where(webhooks.c.deleted.is_(False))
        with self._tx(conn) as conn:
            return [self._webhook(r) for r in conn.execute(query)]

    def get_webhook(
        self, webhook_id: str, include_deleted: bool = False, conn: Connection | None = None
    ) -> Webhook:
        with self._tx(conn) as conn:
            row = conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id)).first()
        if row is None or (row.deleted and not include_deleted):
            raise not_found("webhook", "webhook_not_found")
        return self._webhook(row)

    def insert_webhook(self, hook: Webhook) -> Webhook:
        with self._db.transaction() as conn:
            conn.execute(
                webhooks.insert().values(
                    id=hook.id,
                    care_flow_definition_id=hook.care_flow_definition_id,
                    enabled=hook.enabled,
                    deleted=hook.deleted,
                    config=self._webhook_config(hook),
                    created_at=hook.created_at,
                    updated_at=hook.updated_at,
                )
            )
            self._db.bump_revision(conn)
        return hook

    def save_webhook(self, hook: Webhook, conn: Connection | None = None) -> Webhook:
        """Rewrite a webhook's row; pass ``conn`` from ``locked`` when ``hook`` was read there."""
        hook = hook.model_copy(update={"updated_at": now()})
        with self._tx(conn) as conn:
            conn.execute(
                webhooks.update()
                .where(webhooks.c.id == hook.id)
                .values(
                    care_flow_definition_id=hook.care_flow_definition_id,
                    enabled=hook.enabled,
                    deleted=hook.deleted,
                    config=self._webhook_config(hook),
                    updated_at=hook.updated_at,
                )
            )
            self._db.bump_revision(conn)
        return hook
