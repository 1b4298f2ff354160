"""Admin: webhooks (created disabled; merge-patch; enable gate; soft delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from api.deps import PagingDep, ServicesDep, paged, require_admin
from api.services.webhooks import to_public
from careflow.answers import Page, PreviewAnswer, WebhookPublic
from careflow.models import PreviewRequest, TestPayload, TestPayloadPublic, WebhookCreate

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[Depends(require_admin)])


@router.get("", response_model=Page[WebhookPublic])
def list_webhooks(services: ServicesDep, paging: PagingDep) -> Page[WebhookPublic]:
    base = services.settings.public_base_url
    return paged([to_public(h, base) for h in services.store.configuration.list_webhooks()], paging)


@router.post("", status_code=201, response_model=WebhookPublic)
def create_webhook(body: WebhookCreate, services: ServicesDep) -> WebhookPublic:
    """Create a webhook, disabled; 422 ``invalid_path`` / ``invalid_signature_scheme``."""
    return to_public(services.webhooks.create(body), services.settings.public_base_url)


@router.get("/{webhook_id}", response_model=WebhookPublic)
def get_webhook(webhook_id: str, services: ServicesDep) -> WebhookPublic:
    return to_public(
        services.store.configuration.get_webhook(webhook_id), services.settings.public_base_url
    )


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def patch_webhook(
    webhook_id: str,
    services: ServicesDep,
    patch: dict[str, Any] = Body(media_type="application/merge-patch+json"),  # noqa: B008
) -> WebhookPublic:
    """JSON merge patch (RFC 7396): arrays replace, an omitted secret is kept."""
    return to_public(services.webhooks.patch(webhook_id, patch), services.settings.public_base_url)


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, services: ServicesDep) -> Response:
    """Soft delete: disabled and hidden; requests in flight finish."""
    services.webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", response_model=WebhookPublic)
def enable_webhook(webhook_id: str, services: ServicesDep) -> WebhookPublic:
    """409 with one error per problem unless the webhook is complete (contract §4)."""
    return to_public(services.webhooks.enable(webhook_id), services.settings.public_base_url)


@router.post("/{webhook_id}/disable", response_model=WebhookPublic)
def disable_webhook(webhook_id: str, services: ServicesDep) -> WebhookPublic:
    return to_public(services.webhooks.disable(webhook_id), services.settings.public_base_url)


@router.get("/{webhook_id}/test-payloads", response_model=Page[TestPayloadPublic])
def list_test_payloads(
    webhook_id: str, services: ServicesDep, paging: PagingDep
) -> Page[TestPayload]:
    """The last 20 test payloads of a webhook, newest first."""
    services.store.configuration.get_webhook(webhook_id)
    return paged(services.store.test_payloads.list_test_payloads(webhook_id), paging)


@router.post("/{webhook_id}/preview", response_model=PreviewAnswer)
def preview_mapping(webhook_id: str, body: PreviewRequest, services: ServicesDep) -> PreviewAnswer:
    """Evaluate a proposed mapping against a kept test payload, saving nothing."""
    return services.webhooks.preview(webhook_id, body)
