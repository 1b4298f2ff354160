"""Admin: the built-in care-flow backend's patients and care flows."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError

from api.care_flows import find_care_flow
from api.deps import PagingDep, ServicesDep, StoreDep, paged, require_admin
from careflow.answers import CareFlow, Page, Patient
from careflow.errors import DomainError, InvalidConfigError
from careflow.models import Identifier, RequestError

router = APIRouter(prefix="/v1", tags=["care-flow backend"], dependencies=[Depends(require_admin)])


@router.get("/patients", response_model=Page[Patient])
def find_patients(
    store: StoreDep, identifier: str = Query(description="<system>|<value>")
) -> Page[Patient]:
    """Patients holding ``identifier`` (``<system>|<value>``, as FHIR token search); the system
    is a configured identifier system's URI or its name, else 422 ``unknown_identifier_system``.

    The longest configured URI or name followed by ``|`` is the system, so a value may itself
    hold ``|``; errors never echo the value."""
    invalid = DomainError(
        RequestError(code="invalid_identifier", message="use identifier=<system>|<value>")
    )
    given, sep, rest = identifier.partition("|")
    try:  # the shape first: both parts present, the model's text rules (no NUL)
        Identifier(system=given, value=rest)
    except ValidationError:
        raise invalid from None
    if not sep or not given or not rest:
        raise invalid
    systems = store.configuration.list_identifier_systems()
    known = sorted(
        [(s.system, s.system) for s in systems] + [(s.name, s.system) for s in systems if s.name],
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
    match = next(((k, uri) for k, uri in known if identifier.startswith(k + "|")), None)
    if match is None:
        shown = repr(given) if len(given) <= 200 else repr(given[:200] + "…")
        raise InvalidConfigError(
            RequestError(
                code="unknown_identifier_system",
                message=f"identifier system {shown} is neither the URI nor the name "
                "of a configured identifier system",
            )
        )
    key, uri = match
    value = identifier[len(key) + 1 :]
    try:
        wanted = Identifier(system=uri, value=value)  # the model's text rules (no NUL)
    except ValidationError:
        raise invalid from None
    if not value:
        raise invalid
    patient = store.patients.find_patient(wanted)
    return Page(items=[patient] if patient else [])


@router.get("/patients/{patient_id}", response_model=Patient)
def get_patient(patient_id: str, store: StoreDep) -> Patient:
    return store.patients.get_patient(patient_id)


@router.get("/care-flows", response_model=Page[CareFlow])
def list_care_flows(
    store: StoreDep, paging: PagingDep, patient_id: str | None = None
) -> Page[CareFlow]:
    return paged(store.patients.list_care_flows(patient_id), paging)


@router.get("/care-flows/{care_flow_id}", response_model=CareFlow)
async def get_care_flow(care_flow_id: str, services: ServicesDep) -> CareFlow:
    """A care flow of any backend: built-in rows, temporal-backend workflow executions (status
    from ``describe()``, ``ui_url`` to the Temporal UI) and awell pathways started here."""
    return await find_care_flow(services, care_flow_id)
