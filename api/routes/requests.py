"""Admin: the request log, read from Temporal."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep, require_admin
from api.received_at import received_at
from api.request_models import (
    BulkRetryAnswer,
    RequestDetail,
    RequestFilters,
    RequestSummary,
    RetryAnswer,
)
from careflow.answers import Page
from careflow.errors import InvalidConfigError
from careflow.models import RequestError, RequestStatus

router = APIRouter(prefix="/v1/requests", tags=["requests"], dependencies=[Depends(require_admin)])


@router.get("", response_model=Page[RequestSummary])
async def list_requests(
    services: ServicesDep,
    webhook_id: str | None = None,
    status: RequestStatus | None = None,
    care_flow_definition_id: str | None = None,
    patient_id: str | None = None,
    is_test: bool | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    page_token: str | None = None,
) -> Page[RequestSummary]:
    """One row per request (its latest run): running first, then most recently closed.

    ``status=TEST`` lists test requests; with ``is_test=false`` too it is contradictory: 422
    ``contradictory_filters``."""
    if status == RequestStatus.TEST and is_test is False:
        raise InvalidConfigError(
            RequestError(
                code="contradictory_filters",
                message="status=TEST lists test requests; is_test=false excludes them",
            )
        )
    filters = RequestFilters(
        webhook_id=webhook_id,
        status=status,
        care_flow_definition_id=care_flow_definition_id,
        patient_id=patient_id,
        is_test=bool(is_test),
    )
    items, token = await services.requests.list(filters, limit, page_token)
    return Page(items=items, next_page_token=token)


@router.get("/{request_id}", response_model=RequestDetail)
async def get_request(request_id: str, services: ServicesDep) -> RequestDetail:
    """Everything about a request; answers within 2 s even when no worker runs."""
    return await services.requests.get(request_id)


class BulkRetry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_id: str | None = None
    status: RequestStatus
    care_flow_definition_id: str | None = None
    patient_id: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


@router.post("/retry", response_model=BulkRetryAnswer)
async def retry_requests(
    body: BulkRetry, request: Request, services: ServicesDep
) -> BulkRetryAnswer:
    """Bulk retry: reset every request matching the filters whose latest run is retryable."""
    filters = RequestFilters(**body.model_dump(exclude={"limit"}))
    return await services.retries.retry_many(filters, body.limit, received_at(request))


@router.post("/{request_id}/retry", status_code=202, response_model=RetryAnswer)
async def retry_request(request_id: str, request: Request, services: ServicesDep) -> RetryAnswer:
    """Reset a FAILED (or payload/config-REJECTED) request to its first workflow task."""
    return await services.retries.retry(request_id, received_at(request))
