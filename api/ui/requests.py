"""Request pages (list, detail, retry) and the built-in backend's patient and care-flow pages."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.care_flows import find_care_flow
from api.received_at import received_at
from api.request_models import RequestFilters
from api.ui.common import (
    STATUSES,
    FormDep,
    ServicesDep,
    SessionDep,
    render,
    webhooks_and_definitions,
)
from careflow.errors import DomainError
from careflow.models import (
    RequestError,
    RequestStatus,
)

router = APIRouter()


# --- requests -----------------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(
    request: Request,
    services: ServicesDep,
    sid: SessionDep,
    status: str = "",
    webhook_id: str = "",
    care_flow_definition_id: str = "",
    patient_id: str = "",
    page_token: str = "",
    prev: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """The request log, 25 a page. ``prev`` holds the tokens of the pages before this one
    (oldest first, the first page as ``""``), so that *Previous page* goes back without a
    cursor that visibility cannot give."""
    chosen = {
        "status": status,
        "webhook_id": webhook_id,
        "care_flow_definition_id": care_flow_definition_id,
        "patient_id": patient_id,
    }
    errors: list[RequestError] = []
    items: list[Any] = []
    next_token = None
    try:
        filters = RequestFilters(
            status=RequestStatus(status) if status in STATUSES else None,
            webhook_id=webhook_id or None,
            care_flow_definition_id=care_flow_definition_id or None,
            patient_id=patient_id or None,
        )
        items, next_token = await services.requests.list(filters, 25, page_token or None)
    except DomainError as exc:
        errors = exc.errors
    filters_query = [(k, v) for k, v in chosen.items() if v]
    earlier = list(prev or [])[-50:]  # bounded: a URL must stay short
    next_url = prev_url = None
    if next_token:
        next_url = "/ui/requests?" + urlencode(
            [
                *filters_query,
                ("page_token", next_token),
                *(("prev", t) for t in [*earlier, page_token]),
            ]
        )
    if page_token:
        back = [("page_token", earlier[-1])] if earlier and earlier[-1] else []
        prev_url = "/ui/requests?" + urlencode(
            [*filters_query, *back, *(("prev", t) for t in earlier[:-1])]
        )
    hooks, definitions = await webhooks_and_definitions(services)
    return render(
        request,
        services,
        sid,
        "requests.html",
        items=items,
        chosen=chosen,
        statuses=STATUSES,
        hooks=hooks,
        definitions=definitions,
        next_url=next_url,
        prev_url=prev_url,
        errors=errors,
        hook_names={h.id: h.name for h in hooks},
        titles={d.id: d.title for d in definitions},
        temporal_url=services.requests.ui_list_url([r.run_id for r in items if r.run_id])
        if items
        else None,
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(
    request_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    detail = await services.requests.get(request_id)
    retryable = await services.retries.retryable(request_id)
    return render(
        request,
        services,
        sid,
        "request.html",
        detail=detail,
        retryable=retryable,
        retried=request.query_params.get("retried"),
        names=_names(services, detail.webhook_id, detail.care_flow_definition_id),
    )


def _names(services: Any, webhook_id: str | None, definition_id: str | None) -> dict[str, str]:
    """The webhook's name and the care flow definition's title, for pages that show ids."""
    snapshot = services.config.get()
    hook = snapshot.webhooks.get(webhook_id) if webhook_id else None
    definition = snapshot.definitions.get(definition_id) if definition_id else None
    return {
        "webhook": hook.name if hook else (webhook_id or ""),
        "definition": definition.title if definition else (definition_id or ""),
    }


@router.post("/requests/{request_id}/retry")
async def retry(
    request_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        await services.retries.retry(request_id, received_at(request))
    except DomainError as exc:
        detail = await services.requests.get(request_id)
        return render(
            request,
            services,
            sid,
            "request.html",
            409,
            detail=detail,
            retryable=False,
            errors=exc.errors,
            names=_names(services, detail.webhook_id, detail.care_flow_definition_id),
        )
    return RedirectResponse(f"/ui/requests/{request_id}?retried=1", status_code=303)


# --- patients and care flows ------------------------------------------------------------------


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    patient_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    patient = services.store.patients.get_patient(patient_id)
    flows = services.store.patients.list_care_flows(patient_id)
    return render(request, services, sid, "patient.html", patient=patient, flows=flows)


@router.get("/care-flows/{care_flow_id}", response_class=HTMLResponse)
async def care_flow_page(
    care_flow_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    flow = await find_care_flow(services, care_flow_id)
    return render(request, services, sid, "care_flow.html", flow=flow)
