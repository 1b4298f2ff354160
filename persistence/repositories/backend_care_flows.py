"""Care flows started in a remote backend (Awell), keyed by the request that started them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from persistence.database import Database, aware, now
from persistence.tables import backend_care_flows


@dataclass(frozen=True)
class BackendCareFlowRecord:
    """A request's remote care flow: ``care_flow_id`` is None while the start is unconfirmed
    (claimed before the remote call, not yet answered); ``last_call_at`` is when the last start
    call was sent (None: none sent, or its refusal was certain)."""

    request_id: str
    backend: str
    care_flow_definition_id: str
    patient_id: str
    attempted_at: datetime
    care_flow_id: str | None
    started_at: datetime | None
    last_call_at: datetime | None = None


class BackendCareFlowRepository:
    """Args: db: the process's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _record(row: sa.Row) -> BackendCareFlowRecord:  # type: ignore[type-arg]
        return BackendCareFlowRecord(
            request_id=row.request_id,
            backend=row.backend,
            care_flow_definition_id=row.care_flow_definition_id,
            patient_id=row.patient_id,
            attempted_at=aware(row.attempted_at),
            care_flow_id=row.care_flow_id,
            started_at=aware(row.started_at) if row.started_at is not None else None,
            last_call_at=aware(row.last_call_at) if row.last_call_at is not None else None,
        )

    def get(self, request_id: str) -> BackendCareFlowRecord | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(backend_care_flows).where(backend_care_flows.c.request_id == request_id)
            ).first()
        return self._record(row) if row is not None else None

    def by_care_flow_id(self, care_flow_id: str) -> BackendCareFlowRecord | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(backend_care_flows).where(
                    backend_care_flows.c.care_flow_id == care_flow_id
                )
            ).first()
        return self._record(row) if row is not None else None

    def claim(
        self, request_id: str, backend: str, care_flow_definition_id: str, patient_id: str
    ) -> BackendCareFlowRecord:
        """Insert-or-fetch the request's row before the remote start (``attempted_at`` = now)."""
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    backend_care_flows.insert().values(
                        request_id=request_id,
                        backend=backend,
                        care_flow_definition_id=care_flow_definition_id,
                        patient_id=patient_id,
                        attempted_at=now(),
                    )
                )
        except IntegrityError:
            pass
        found = self.get(request_id)
        assert found is not None
        return found

    def mark_call(self, request_id: str, sent: bool = True) -> None:
        """Record that a start call is about to be sent now (``sent=False``: the last call was
        certainly not carried out, e.g. refused or rate-limited)."""
        with self._db.transaction() as conn:
            conn.execute(
                backend_care_flows.update()
                .where(backend_care_flows.c.request_id == request_id)
                .values(last_call_at=now() if sent else None)
            )

    def complete(self, request_id: str, care_flow_id: str) -> BackendCareFlowRecord:
        """Record the remote care flow id against the request (first writer wins).

        Raises:
            IntegrityError: ``care_flow_id`` is already recorded against another request.
        """
        with self._db.transaction() as conn:
            conn.execute(
                backend_care_flows.update()
                .where(
                    backend_care_flows.c.request_id == request_id,
                    backend_care_flows.c.care_flow_id.is_(None),
                )
                .values(care_flow_id=care_flow_id, started_at=now())
            )
        found = self.get(request_id)
        assert found is not None
        return found
