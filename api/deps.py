"""Long-lived resources of the API process and the dependencies that reach them."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from careflow.config import ConfigCache
from careflow.errors import DomainError
from careflow.ingest import IngestService
from careflow.models import RequestError
from careflow.request_log import RequestLog
from careflow.settings import Settings
from careflow.store import Store
from careflow.webhooks import WebhookService


@dataclass
class Services:
    """Everything the routes use; built once in the app's lifespan."""

    settings: Settings
    admin_token: str
    store: Store
    config: ConfigCache
    client: Client
    requests: RequestLog
    ingest: IngestService
    webhooks: WebhookService


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


class UnauthorizedError(DomainError):
    status_code = 401


_bearer = HTTPBearer(auto_error=False)


def require_admin(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin routes need ``Authorization: Bearer <token>``, compared in constant time."""
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), services.admin_token.encode()):
        raise UnauthorizedError(
            RequestError(code="unauthorized", message="a valid admin bearer token is required")
        )


def store_dep(services: ServicesDep) -> Store:
    return services.store


StoreDep = Annotated[Store, Depends(store_dep)]
