"""Long-lived resources of the API process and the dependencies that reach them."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.ingest import IngestService
from api.metrics import ApiMetrics
from api.paging import MAX_LIMIT, PageTokens
from api.request_log import RequestLog
from api.request_retry import RequestRetry
from api.services.awell_import import AwellImportService
from api.services.configuration import ConfigurationService
from api.services.webhooks import WebhookService
from api.telemetry import IngestTelemetry
from careflow.answers import Page
from careflow.errors import UnauthorizedError
from careflow.models import RequestError
from careflow.settings import Settings
from persistence.config_cache import ConfigCache
from persistence.store import Store


@dataclass
class Services:
    """Everything the routes use; built once in the app's lifespan."""

    settings: Settings
    admin_token: str
    page_tokens: PageTokens
    store: Store
    config: ConfigCache
    client: Client
    requests: RequestLog
    retries: RequestRetry
    ingest: IngestService
    webhooks: WebhookService
    configuration: ConfigurationService
    metrics: ApiMetrics
    telemetry: IngestTelemetry
    awell_import: AwellImportService


async def get_services(request: Request) -> Services:
    """Async on purpose: a sync dependency costs a thread hop on every request."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


_bearer = HTTPBearer(auto_error=False)


def require_admin(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin routes need ``Authorization: Bearer <token>``, compared in constant time."""
    given = credentials.credentials if credentials else ""
    expected = services.admin_token
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError(
            RequestError(code="unauthorized", message="a valid admin bearer token is required")
        )


def store_dep(services: ServicesDep) -> Store:
    return services.store


StoreDep = Annotated[Store, Depends(store_dep)]


@dataclass
class Paging:
    limit: int
    page_token: str | None
    tokens: PageTokens


def paging_params(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    page_token: str | None = None,
) -> Paging:
    return Paging(limit=limit, page_token=page_token, tokens=services.page_tokens)


PagingDep = Annotated[Paging, Depends(paging_params)]
T = TypeVar("T")


def paged(items: Sequence[T], paging: Paging) -> Page[T]:
    """A list answer ``{items, next_page_token}`` for one page of ``items``."""
    chunk, token = paging.tokens.page(items, paging.limit, paging.page_token)
    return Page(items=chunk, next_page_token=token)
