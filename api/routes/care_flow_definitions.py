"""Admin: care flow definitions and their baseline data point definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import PagingDep, ServicesDep, StoreDep, paged, require_admin
from careflow.models import (
    SLUG_PATTERN,
    CareFlowDefinition,
    CareFlowDefinitionCreate,
    CareFlowDefinitionUpdate,
    Page,
)

router = APIRouter(
    prefix="/v1/care-flow-definitions",
    tags=["care flow definitions"],
    dependencies=[Depends(require_admin)],
)


@router.get("", response_model=Page[CareFlowDefinition])
def list_care_flow_definitions(store: StoreDep, paging: PagingDep) -> Page[CareFlowDefinition]:
    return paged(store.configuration.list_care_flow_definitions(), paging)


@router.post("", status_code=201, response_model=CareFlowDefinition)
def create_care_flow_definition(
    body: CareFlowDefinitionCreate, services: ServicesDep
) -> CareFlowDefinition:
    return services.configuration.save_care_flow_definition(
        CareFlowDefinition(**body.model_dump()), replace=False
    )


@router.get("/{definition_id}", response_model=CareFlowDefinition)
def get_care_flow_definition(definition_id: str, store: StoreDep) -> CareFlowDefinition:
    return store.configuration.get_care_flow_definition(definition_id)


@router.put("/{definition_id}", response_model=CareFlowDefinition)
def put_care_flow_definition(
    definition_id: Annotated[str, Path(pattern=SLUG_PATTERN)],
    body: CareFlowDefinitionUpdate,
    services: ServicesDep,
) -> CareFlowDefinition:
    return services.configuration.save_care_flow_definition(
        CareFlowDefinition(id=definition_id, **body.model_dump()), replace=True
    )
