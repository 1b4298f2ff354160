"""The SQL store: configuration (identifier systems, care flow definitions, webhooks) and the
built-in care-flow backend's patients and care flows. SQLAlchemy 2 Core, Alembic migrations.

SQLite runs in WAL mode with a busy timeout, so concurrent writers wait instead of failing; on
PostgreSQL the same statements run unchanged.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from careflow.errors import ConflictError, TransientStoreError, not_found
from careflow.models import (
    CareFlow,
    CareFlowDefinition,
    Identifier,
    IdentifierSystem,
    Patient,
    RequestError,
    TestPayload,
    Webhook,
)
from persistence.tables import (
    care_flow_definitions,
    care_flows,
    config_revision,
    identifier_systems,
    patient_identifiers,
    patients,
    test_payloads,
    webhooks,
)

TEST_PAYLOADS_KEPT = 20

_MIGRATIONS = Path(__file__).parent / "migrations"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_webhook_id() -> str:
    """An unguessable, URL-safe webhook id: 160 random bits (contract §2 asks for ≥ 128)."""
    return "wh_" + secrets.token_urlsafe(20)


class Store:
    """Typed access to the database; one instance (one engine, one pool) per process.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        if is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(
            url,
            pool_pre_ping=not is_sqlite,
            connect_args={"timeout": 30} if is_sqlite else {},
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    # --- plumbing ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the Alembic migrations up to head (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise TransientStoreError(
                type(exc.orig).__name__ if exc.orig else "operational"
            ) from exc

    def ping(self) -> None:
        with self._tx() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _bump_revision(self, conn: Connection) -> None:
        updated = conn.execute(
            config_revision.update()
            .where(config_revision.c.id == 1)
            .values(revision=config_revision.c.revision + 1)
        )
        if updated.rowcount == 0:
            conn.execute(config_revision.insert().values(id=1, revision=1))

    def revision(self) -> int:
        """The configuration revision; bumped by every configuration write."""
        with self._tx() as conn:
            value = conn.execute(sa.select(config_revision.c.revision)).scalar()
        return int(value or 0)

    # --- identifier systems -----------------------------------------------------------------

    def list_identifier_systems(self) -> list[IdentifierSystem]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(identifier_systems).order_by(identifier_systems.c.name))
            return [IdentifierSystem.model_validate(r._asdict()) for r in rows]

    def get_identifier_system(self, name: str) -> IdentifierSystem:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(identifier_systems).where(identifier_systems.c.name == name)
            ).first()
        if row is None:
            raise not_found("identifier system", "identifier_system_not_found")
        return IdentifierSystem.model_validate(row._asdict())

    def create_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        try:
            with self._tx() as conn:
                conn.execute(identifier_systems.insert().values(**item.model_dump()))
                self._bump_revision(conn)
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
            with self._tx() as conn:
                conn.execute(
                    identifier_systems.update()
                    .where(identifier_systems.c.name == item.name)
                    .values(system=item.system, description=item.description)
                )
                self._bump_revision(conn)
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
        with self._tx() as conn:
            conn.execute(identifier_systems.delete().where(identifier_systems.c.name == name))
            self._bump_revision(conn)

    def _system_in_use(self, system: str) -> bool:
        with self._tx() as conn:
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

    def list_care_flow_definitions(self) -> list[CareFlowDefinition]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(care_flow_definitions).order_by(care_flow_definitions.c.id)
            )
            return [CareFlowDefinition.model_validate(r._asdict()) for r in rows]

    def get_care_flow_definition(self, definition_id: str) -> CareFlowDefinition:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(care_flow_definitions).where(care_flow_definitions.c.id == definition_id)
            ).first()
        if row is None:
            raise not_found("care flow definition", "care_flow_definition_not_found")
        return CareFlowDefinition.model_validate(row._asdict())

    def create_care_flow_definition(self, item: CareFlowDefinition) -> CareFlowDefinition:
        try:
            with self._tx() as conn:
                conn.execute(care_flow_definitions.insert().values(**item.model_dump(mode="json")))
                self._bump_revision(conn)
        except IntegrityError as exc:
            raise ConflictError(
                RequestError(
                    code="care_flow_definition_exists",
                    message="a care flow definition with this id exists",
                )
            ) from exc
        return item

    def update_care_flow_definition(self, item: CareFlowDefinition) -> CareFlowDefinition:
        values = item.model_dump(mode="json")
        with self._tx() as conn:
            updated = conn.execute(
                care_flow_definitions.update()
                .where(care_flow_definitions.c.id == item.id)
                .values(**values)
            )
            if updated.rowcount == 0:
                raise not_found("care flow definition", "care_flow_definition_not_found")
            self._bump_revision(conn)
        return item

    # --- webhooks ---------------------------------------------------------------------------

    @staticmethod
    def _webhook(row: Any) -> Webhook:
        data = dict(row.config)
        data.update(
            id=row.id,
            care_flow_definition_id=row.care_flow_definition_id,
            enabled=row.enabled,
            deleted=row.deleted,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
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

    def list_webhooks(self, include_deleted: bool = False) -> list[Webhook]:
        query = sa.select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        if not include_deleted:
            query = query.where(webhooks.c.deleted.is_(False))
        with self._tx() as conn:
            return [self._webhook(r) for r in conn.execute(query)]

    def get_webhook(self, webhook_id: str, include_deleted: bool = False) -> Webhook:
        with self._tx() as conn:
            row = conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id)).first()
        if row is None or (row.deleted and not include_deleted):
            raise not_found("webhook", "webhook_not_found")
        return self._webhook(row)

    def insert_webhook(self, hook: Webhook) -> Webhook:
        with self._tx() as conn:
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
            self._bump_revision(conn)
        return hook

    def save_webhook(self, hook: Webhook) -> Webhook:
        hook = hook.model_copy(update={"updated_at": _now()})
        with self._tx() as conn:
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
            self._bump_revision(conn)
        return hook

    # --- test payloads ----------------------------------------------------------------------

    def add_test_payload(self, item: TestPayload) -> None:
        """Keep a test request's payload; only the newest 20 per webhook are kept."""
        try:
            with self._tx() as conn:
                conn.execute(test_payloads.insert().values(**item.model_dump()))
                keep = (
                    sa.select(test_payloads.c.id)
                    .where(test_payloads.c.webhook_id == item.webhook_id)
                    .order_by(test_payloads.c.id.desc())
                    .limit(TEST_PAYLOADS_KEPT)
                )
                conn.execute(
                    test_payloads.delete().where(
                        test_payloads.c.webhook_id == item.webhook_id,
                        test_payloads.c.id.not_in(keep.scalar_subquery()),
                    )
                )
        except IntegrityError:
            pass  # the same test delivery again: already kept

    def list_test_payloads(self, webhook_id: str) -> list[TestPayload]:
        """The kept test payloads of a webhook, newest first."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(test_payloads)
                .where(test_payloads.c.webhook_id == webhook_id)
                .order_by(test_payloads.c.id.desc())
            )
            return [
                TestPayload.model_validate({**r._asdict(), "received_at": _aware(r.received_at)})
                for r in rows
            ]

    # --- patients (built-in backend) --------------------------------------------------------

    def _patient(self, conn: Connection, patient_id: str) -> Patient | None:
        row = conn.execute(sa.select(patients).where(patients.c.id == patient_id)).first()
        if row is None:
            return None
        idents = conn.execute(
            sa.select(patient_identifiers.c.system, patient_identifiers.c.value)
            .where(patient_identifiers.c.patient_id == patient_id)
            .order_by(patient_identifiers.c.id)
        )
        return Patient(
            id=row.id,
            identifiers=[Identifier(system=i.system, value=i.value) for i in idents],
            anonymous=row.anonymous,
            profile=row.profile,
            created_at=_aware(row.created_at),
        )

    def get_patient(self, patient_id: str) -> Patient:
        with self._tx() as conn:
            patient = self._patient(conn, patient_id)
        if patient is None:
            raise not_found("patient", "patient_not_found")
        return patient

    def find_patient(self, identifier: Identifier) -> Patient | None:
        """The patient holding ``identifier`` (system and value match exactly), or None."""
        with self._tx() as conn:
            patient_id = conn.execute(
                sa.select(patient_identifiers.c.patient_id).where(
                    patient_identifiers.c.system == identifier.system,
                    patient_identifiers.c.value == identifier.value,
                )
            ).scalar()
            return None if patient_id is None else self._patient(conn, patient_id)

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], request_id: str
    ) -> tuple[Patient, bool]:
        """Insert-or-fetch a patient.

        With an identifier, the unique constraint on (system, value) makes concurrent callers
        converge on one patient; without one, the patient is anonymous and keyed by
        ``request_id``, so a retried or reset request reuses it.

        Returns:
            (the patient, True when this call created it).
        """
        patient_id = "pat_" + uuid.uuid4().hex
        try:
            with self._tx() as conn:
                conn.execute(
                    patients.insert().values(
                        id=patient_id,
                        anonymous=identifier is None,
                        anonymous_request_id=request_id if identifier is None else None,
                        profile=profile,
                        created_at=_now(),
                    )
                )
                if identifier is not None:
                    conn.execute(
                        patient_identifiers.insert().values(
                            patient_id=patient_id, system=identifier.system, value=identifier.value
                        )
                    )
        except IntegrityError:
            if identifier is not None:
                existing = self.find_patient(identifier)
            else:
                with self._tx() as conn:
                    found = conn.execute(
                        sa.select(patients.c.id).where(
                            patients.c.anonymous_request_id == request_id
                        )
                    ).scalar()
                    existing = None if found is None else self._patient(conn, found)
            if existing is None:
                raise
            return existing, False
        return self.get_patient(patient_id), True

    def count_patients(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(patients)).scalar() or 0)

    # --- care flows (built-in backend) ------------------------------------------------------

    @staticmethod
    def _care_flow(row: Any) -> CareFlow:
        data = row._asdict()
        data["started_at"] = _aware(data["started_at"])
        return CareFlow.model_validate(data)

    def start_care_flow(
        self,
        care_flow_definition_id: str,
        patient_id: str,
        data_points: dict[str, Any],
        request_id: str,
    ) -> tuple[CareFlow, bool]:
        """Insert-or-fetch the care flow of ``request_id`` (unique), so it starts at most once.

        Returns:
            (the care flow, True when this call started it).
        """
        try:
            with self._tx() as conn:
                conn.execute(
                    care_flows.insert().values(
                        id="cf_" + uuid.uuid4().hex,
                        care_flow_definition_id=care_flow_definition_id,
                        patient_id=patient_id,
                        data_points=data_points,
                        request_id=request_id,
                        started_at=_now(),
                    )
                )
        except IntegrityError:
            pass
        else:
            return self._care_flow_by_request(request_id), True
        return self._care_flow_by_request(request_id), False

    def _care_flow_by_request(self, request_id: str) -> CareFlow:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(care_flows).where(care_flows.c.request_id == request_id)
            ).first()
        if row is None:
            raise not_found("care flow", "care_flow_not_found")
        return self._care_flow(row)

    def get_care_flow(self, care_flow_id: str) -> CareFlow:
        with self._tx() as conn:
            row = conn.execute(sa.select(care_flows).where(care_flows.c.id == care_flow_id)).first()
        if row is None:
            raise not_found("care flow", "care_flow_not_found")
        return self._care_flow(row)

    def list_care_flows(self, patient_id: str | None = None) -> list[CareFlow]:
        query = sa.select(care_flows).order_by(care_flows.c.started_at, care_flows.c.id)
        if patient_id is not None:
            query = query.where(care_flows.c.patient_id == patient_id)
        with self._tx() as conn:
            return [self._care_flow(r) for r in conn.execute(query)]

    def count_care_flows(self) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(care_flows)).scalar() or 0
            )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
