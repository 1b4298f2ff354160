"""Admin: care flow definitions and their baseline data point definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from api.deps import PagingDep, ServicesDep, StoreDep, paged, require_admin
from api.errors import errors_response
from api.services.awell_import import ImportAnswer
from api.services.configuration import DisabledWebhook
from backends.base import BackendRefusedError, BackendUnavailableError
from careflow.answers import Page
from careflow.errors import InvalidConfigError
from careflow.models import (
    SLUG_PATTERN,
    CareFlowDefinition,
    CareFlowDefinitionCreate,
    CareFlowDefinitionReplace,
    RequestError,
)
from careflow.read_only import read_only_problems

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


@router.post(
    "/import",
    response_model=ImportAnswer,
    responses={409: {"description": "awell_not_configured"}, 502: {}, 503: {}},
)
def import_care_flow_definitions(
    services: ServicesDep, force: Annotated[bool, Query()] = False
) -> ImportAnswer | JSONResponse:
    """Create or update definitions (backend awell) from Awell's published pathway definitions.

    An update that would leave enabled webhooks incomplete is skipped
    (``webhooks_left_incomplete``) unless ``force=true``, which disables those webhooks.

    Awell refusing answers 502 ``backend_refused`` (with Awell's error codes), Awell unavailable
    503 ``awell_unavailable`` / ``awell_rate_limited`` with ``Retry-After``.
    """
    try:
        return services.awell_import.import_definitions(force=force)
    except BackendRefusedError as exc:
        return errors_response([RequestError(code=exc.code, message=exc.message)], 502)
    except BackendUnavailableError as exc:
        error = RequestError(code=exc.code, message=exc.public_message or "Awell is unavailable")
        retry_after = str(int(exc.retry_after or 5))
        return errors_response([error], 503, {"Retry-After": retry_after})


@router.get("/{definition_id}", response_model=CareFlowDefinition)
def get_care_flow_definition(definition_id: str, store: StoreDep) -> CareFlowDefinition:
    return store.configuration.get_care_flow_definition(definition_id)


class CareFlowDefinitionSaved(CareFlowDefinition):
    """A replaced definition, and the webhooks ``?force=true`` disabled (empty otherwise)."""

    disabled_webhooks: list[DisabledWebhook] = Field(default_factory=list)


@router.put(
    "/{definition_id}",
    response_model=CareFlowDefinitionSaved,
    responses={409: {"description": "the change would leave enabled webhooks incomplete"}},
)
def put_care_flow_definition(
    definition_id: Annotated[str, Path(pattern=SLUG_PATTERN)],
    body: CareFlowDefinitionReplace,
    services: ServicesDep,
    force: Annotated[bool, Query()] = False,
) -> CareFlowDefinitionSaved:
    """Replace a definition. Accepts the body a GET returned (``id`` equal to the path's; a
    different one → 422 ``read_only_field``); ``title``, ``published`` and
    ``data_point_definitions`` are required. A change that would leave an enabled webhook
    incomplete (a new required data point it does not map, a mapped data point removed,
    unpublishing) is 409 with one error per webhook and data point, unless ``force=true``: then
    those webhooks are disabled and listed in ``disabled_webhooks``."""
    problems = read_only_problems(body.model_dump(exclude_unset=True), {"id": definition_id})
    if problems:
        raise InvalidConfigError(problems)
    saved = services.configuration.save_care_flow_definition_gated(
        CareFlowDefinition(**{**body.model_dump(exclude={"id"}), "id": definition_id}),
        replace=True,
        force=force,
    )
    return CareFlowDefinitionSaved(
        **saved.definition.model_dump(), disabled_webhooks=saved.disabled_webhooks
    )
