"""The built-in care-flow backend's patients and care flows."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from careflow.answers import CareFlow, Patient
from careflow.errors import not_found
from careflow.models import Identifier
from persistence.database import Database, aware, now
from persistence.tables import (
    care_flows,
    patient_identifiers,
    patients,
)


class PatientRepository:
    """Patients (with their identifiers) and the care flows started for them.

    Args:
        db: the process's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

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
            created_at=aware(row.created_at),
        )

    def get_patient(self, patient_id: str) -> Patient:
        with self._db.transaction() as conn:
            patient = self._patient(conn, patient_id)
        if patient is None:
            raise not_found("patient", "patient_not_found")
        return patient

    def find_patient(self, identifier: Identifier) -> Patient | None:
        """The patient holding ``identifier`` (system and value match exactly), or None."""
        with self._db.transaction() as conn:
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
            with self._db.transaction() as conn:
                conn.execute(
                    patients.insert().values(
                        id=patient_id,
                        anonymous=identifier is None,
                        anonymous_request_id=request_id if identifier is None else None,
                        profile=profile,
                        created_at=now(),
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
                with self._db.transaction() as conn:
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
        with self._db.transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(patients)).scalar() or 0)

    # --- care flows (built-in backend) ------------------------------------------------------

    @staticmethod
    def _care_flow(row: Any) -> CareFlow:
        data = row._asdict()
        data["started_at"] = aware(data["started_at"])
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
            with self._db.transaction() as conn:
                conn.execute(
                    care_flows.insert().values(
                        id="cf_" + uuid.uuid4().hex,
                        care_flow_definition_id=care_flow_definition_id,
                        patient_id=patient_id,
                        data_points=data_points,
                        request_id=request_id,
                        started_at=now(),
                    )
                )
        except IntegrityError:
            existing = self._find_care_flow_by_request(request_id)
            if existing is None:  # not a repeat: a foreign key (the patient) is missing
                raise not_found("patient", "patient_not_found") from None
            return existing, False
        return self._care_flow_by_request(request_id), True

    def _care_flow_by_request(self, request_id: str) -> CareFlow:
        found = self._find_care_flow_by_request(request_id)
        if found is None:
            raise not_found("care flow", "care_flow_not_found")
        return found

    def _find_care_flow_by_request(self, request_id: str) -> CareFlow | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(care_flows).where(care_flows.c.request_id == request_id)
            ).first()
        return self._care_flow(row) if row is not None else None

    def find_care_flow_of(
        self, care_flow_definition_id: str, patient_id: str, request_id: str | None = None
    ) -> str | None:
        """The id of the earliest care flow of a definition started for a patient, or None;
        with ``request_id``, other than the care flow that request started."""
        conditions = [
            care_flows.c.patient_id == patient_id,
            care_flows.c.care_flow_definition_id == care_flow_definition_id,
        ]
        if request_id is not None:
            conditions.append(care_flows.c.request_id != request_id)
        with self._db.transaction() as conn:
            found = conn.execute(
                sa.select(care_flows.c.id)
                .where(*conditions)
                .order_by(care_flows.c.started_at, care_flows.c.id)
                .limit(1)
            ).scalar()
        return None if found is None else str(found)

    def get_care_flow(self, care_flow_id: str) -> CareFlow:
        with self._db.transaction() as conn:
            row = conn.execute(sa.select(care_flows).where(care_flows.c.id == care_flow_id)).first()
        if row is None:
            raise not_found("care flow", "care_flow_not_found")
        return self._care_flow(row)

    def list_care_flows(self, patient_id: str | None = None) -> list[CareFlow]:
        query = sa.select(care_flows).order_by(care_flows.c.started_at, care_flows.c.id)
        if patient_id is not None:
            query = query.where(care_flows.c.patient_id == patient_id)
        with self._db.transaction() as conn:
            return [self._care_flow(r) for r in conn.execute(query)]

    def count_care_flows(self) -> int:
        with self._db.transaction() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(care_flows)).scalar() or 0
            )
