"""Webhook pages: list, create, mapping editor with live preview, test payloads, enable."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import Services
from api.request_models import RequestFilters
from api.services.webhooks import to_public
from api.ui.common import (
    STATUSES,
    FormDep,
    ServicesDep,
    SessionDep,
    _errors,
    render,
    webhooks_and_definitions,
)
from careflow.errors import DomainError, NotFoundError
from careflow.mapping import tree
from careflow.mapping.suggest import suggest
from careflow.models import (
    DataPointMapping,
    PatientIdentifierMapping,
    PreviewRequest,
    RequestError,
    RequestStatus,
    TestPayload,
    WebhookCreate,
)
from persistence.repositories.test_payloads import KeptTestPayload

router = APIRouter()


# --- webhooks -----------------------------------------------------------------------------------


async def _status_counts(services: Services, webhook_id: str) -> dict[str, int]:
    """One count per status (SQL visibility has no GROUP BY on custom attributes)."""

    async def count(status: str) -> int:
        filters = RequestFilters(webhook_id=webhook_id, status=RequestStatus(status))
        try:
            return await services.requests.count(filters)
        except Exception:  # Temporal unreachable: the page still renders, with "?"
            return -1

    counts = await asyncio.gather(*(count(s) for s in STATUSES))
    return dict(zip(STATUSES, counts, strict=True))


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, services: ServicesDep, sid: SessionDep) -> HTMLResponse:
    hooks, definitions = await webhooks_and_definitions(services)
    base = services.settings.public_base_url
    counts = await asyncio.gather(*(_status_counts(services, h.id) for h in hooks))
    rows = [{"hook": to_public(h, base), "counts": c} for h, c in zip(hooks, counts, strict=True)]
    return render(
        request,
        services,
        sid,
        "webhooks.html",
        rows=rows,
        definitions=definitions,
        titles={d.id: d.title for d in definitions},
        statuses=STATUSES,
    )


@router.post("/webhooks")
def create_webhook(
    request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    definition_id = form.get("care_flow_definition_id", "")
    name = form.get("name", "").strip()
    if not name:  # so that a webhook can be created with the mouse alone
        titles = {d.id: d.title for d in services.config.get().definitions.values()}
        name = f"{titles.get(definition_id) or definition_id} webhook"
    try:
        hook = services.webhooks.create(
            WebhookCreate(name=name, care_flow_definition_id=definition_id)
        )
    except (DomainError, ValidationError) as exc:
        return render(
            request,
            services,
            sid,
            "webhooks.html",
            422,
            rows=[],
            errors=_errors(exc),
            definitions=services.store.configuration.list_care_flow_definitions(),
            titles={},
            statuses=[],
        )
    return RedirectResponse(f"/ui/webhooks/{hook.id}", status_code=303)


def _webhook_page(
    request: Request,
    services: Services,
    sid: str,
    webhook_id: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    hook = services.store.configuration.get_webhook(webhook_id)
    snapshot = services.config.get()
    definition = snapshot.definitions.get(hook.care_flow_definition_id)
    paths = {m.data_point_definition_id: m for m in hook.data_point_mappings}
    from careflow.validation import enable_problems

    return render(
        request,
        services,
        sid,
        "webhook.html",
        status_code,
        hook=to_public(hook, services.settings.public_base_url),
        definition=definition,
        paths=paths,
        systems=services.store.configuration.list_identifier_systems(),
        problems=context.pop("problems", None) or enable_problems(hook, snapshot),
        **context,
    )


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    return _webhook_page(request, services, sid, webhook_id)


def _proposal(
    form: dict[str, Any],
) -> tuple[list[DataPointMapping], PatientIdentifierMapping | None]:
    mappings = []
    for key, value in form.items():
        if key.startswith("path__") and isinstance(value, str) and value.strip():
            point = key.removeprefix("path__")
            date_format = form.get(f"date_format__{point}") or None
            mappings.append(
                DataPointMapping(
                    data_point_definition_id=point, path=value.strip(), date_format=date_format
                )
            )
    value_path = (form.get("value_path") or "").strip()
    identifier = None
    if value_path:
        system = (form.get("system") or "").strip() or None
        system_path = (form.get("system_path") or "").strip() or None
        identifier = PatientIdentifierMapping(
            system=system, system_path=None if system else system_path, value_path=value_path
        )
    return mappings, identifier


@router.post("/webhooks/{webhook_id}/mapping")
def save_mapping(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        mappings, identifier = _proposal(form)
        services.webhooks.patch(
            webhook_id,
            {
                "data_point_mappings": [m.model_dump(exclude_none=True) for m in mappings],
                "patient_identifier": identifier.model_dump() if identifier else None,
            },
        )
    except (DomainError, ValidationError) as exc:
        return _webhook_page(request, services, sid, webhook_id, 422, errors=_errors(exc))
    return RedirectResponse(f"/ui/webhooks/{webhook_id}?saved=1", status_code=303)


@router.post("/webhooks/{webhook_id}/preview", response_class=HTMLResponse)
def preview(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> HTMLResponse:
    """The live preview fragment: what each proposed path gives on the newest test payload,
    and suggested paths for the data points still without one."""
    try:
        mappings, identifier = _proposal(form)
        answer = services.webhooks.preview(
            webhook_id,
            PreviewRequest(data_point_mappings=mappings, patient_identifier=identifier),
        )
    except NotFoundError as exc:
        if exc.errors[0].code != "test_payload_not_found":
            raise
        # Not an error: nothing has been sent to the test URL yet.
        return render(request, services, sid, "_preview.html", answer=None, no_payload=True)
    except (DomainError, ValidationError) as exc:
        return render(request, services, sid, "_preview.html", answer=None, errors=_errors(exc))
    hook = services.store.configuration.get_webhook(webhook_id)
    definition = services.config.get().definitions.get(hook.care_flow_definition_id)
    newest = services.store.test_payloads.list_test_payloads(webhook_id)[:1]
    suggestions = {}
    if definition is not None and newest:
        mapped = {m.data_point_definition_id for m in mappings}
        suggestions = suggest(definition, newest[0].payload, mapped)
    titles = (
        {p.id: p.title or p.id for p in definition.data_point_definitions} if definition else {}
    )
    return render(
        request,
        services,
        sid,
        "_preview.html",
        answer=answer,
        errors=answer.errors,
        suggestions=suggestions,
        point_titles=titles,
    )


@router.get("/webhooks/{webhook_id}/tree", response_class=HTMLResponse)
def payload_tree(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    """The newest test payload as a tree of clickable values (map by pointing)."""
    services.store.configuration.get_webhook(webhook_id)
    newest = services.store.test_payloads.list_test_payloads(webhook_id)[:1]
    return render(
        request,
        services,
        sid,
        "_payload_tree.html",
        root=tree.build(newest[0].payload) if newest else None,
        received_at=newest[0].received_at if newest else None,
        hook_id=webhook_id,
    )


# A kept payload longer than this (as indented JSON) is shown cut, with a link to open it whole.
SHOWN_PAYLOAD_BYTES = 8 * 1024


@dataclass(frozen=True)
class ShownPayload:
    item: TestPayload
    text: str
    truncated: bool
    shown_kib: int
    total_kib: int


def _shown(kept: KeptTestPayload) -> ShownPayload:
    text = json.dumps(kept.item.payload, indent=2, ensure_ascii=False)
    encoded = text.encode()
    if len(encoded) <= SHOWN_PAYLOAD_BYTES:
        return ShownPayload(kept.item, text, False, 0, 0)
    cut = encoded[:SHOWN_PAYLOAD_BYTES].decode(errors="ignore")
    # Both sizes measure the same rendering (indented UTF-8 JSON), shown rounded down, whole
    # rounded up: "Cut at 8 KiB of 12 KiB", never a whole smaller than the part.
    return ShownPayload(
        kept.item,
        cut + "\n…",
        True,
        len(cut.encode()) // 1024,
        -(-len(encoded) // 1024),
    )


@router.get("/webhooks/{webhook_id}/test-payloads", response_class=HTMLResponse)
def test_payloads(
    webhook_id: str,
    request: Request,
    services: ServicesDep,
    sid: SessionDep,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> Response:
    """The test payload panel; with ``after`` (the last row id shown) only newer payloads, as
    out-of-band additions, or 204 when there are none (the htmx poll, every second)."""
    kept = services.store.test_payloads.kept(webhook_id, after or 0)
    if after is not None and not kept:
        return Response(status_code=204)
    return render(
        request,
        services,
        sid,
        "_test_payloads.html",
        items=[_shown(k) for k in kept],
        webhook_id=webhook_id,
        last_id=max([after or 0, *(k.id for k in kept)]),
        after=after,
        incremental=after is not None,
    )


@router.get("/webhooks/{webhook_id}/test-payloads/{request_id}")
def test_payload(
    webhook_id: str, request_id: str, services: ServicesDep, sid: SessionDep
) -> Response:
    """One kept test payload, whole, as indented JSON."""
    kept = services.store.test_payloads.get(webhook_id, request_id)
    if kept is None:
        raise NotFoundError(
            RequestError(code="test_payload_not_found", message="no kept test payload")
        )
    return Response(
        json.dumps(kept.item.payload, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.post("/webhooks/{webhook_id}/enable")
def enable(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        services.webhooks.enable(webhook_id)
    except DomainError as exc:
        return _webhook_page(request, services, sid, webhook_id, 409, problems=exc.errors)
    return RedirectResponse(f"/ui/webhooks/{webhook_id}", status_code=303)


@router.post("/webhooks/{webhook_id}/disable")
def disable(webhook_id: str, services: ServicesDep, form: FormDep) -> Response:
    services.webhooks.disable(webhook_id)
    return RedirectResponse(f"/ui/webhooks/{webhook_id}", status_code=303)
