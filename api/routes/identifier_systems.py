"""Admin: identifier systems (FHIR ``Identifier.system`` namespaces)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.deps import PagingDep, ServicesDep, StoreDep, paged, require_admin
from careflow.answers import Page
from careflow.errors import InvalidConfigError
from careflow.models import (
    SLUG_PATTERN,
    IdentifierSystem,
    IdentifierSystemCreate,
    IdentifierSystemReplace,
)
from careflow.read_only import read_only_problems

router = APIRouter(
    prefix="/v1/identifier-systems",
    tags=["identifier systems"],
    dependencies=[Depends(require_admin)],
)


@router.get("", response_model=Page[IdentifierSystem])
def list_identifier_systems(store: StoreDep, paging: PagingDep) -> Page[IdentifierSystem]:
    return paged(store.configuration.list_identifier_systems(), paging)


@router.post("", status_code=201, response_model=IdentifierSystem)
def create_identifier_system(
    body: IdentifierSystemCreate, services: ServicesDep
) -> IdentifierSystem:
    return services.configuration.create_identifier_system(IdentifierSystem(**body.model_dump()))


@router.get("/{name}", response_model=IdentifierSystem)
def get_identifier_system(name: str, store: StoreDep) -> IdentifierSystem:
    return store.configuration.get_identifier_system(name)


@router.put("/{name}", response_model=IdentifierSystem)
def put_identifier_system(
    name: Annotated[str, Path(pattern=SLUG_PATTERN)],
    body: IdentifierSystemReplace,
    services: ServicesDep,
) -> IdentifierSystem:
    """Replace a system's URI and description; a ``name`` different from the path's → 422
    ``read_only_field`` (the body a GET returned is accepted)."""
    problems = read_only_problems(body.model_dump(exclude_unset=True), {"name": name})
    if problems:
        raise InvalidConfigError(problems)
    return services.configuration.update_identifier_system(
        IdentifierSystem(**{**body.model_dump(exclude={"name"}), "name": name})
    )


@router.delete("/{name}", status_code=204)
def delete_identifier_system(name: str, services: ServicesDep) -> Response:
    services.configuration.delete_identifier_system(name)
    return Response(status_code=204)
