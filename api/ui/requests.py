"""Request pages (list, detail, retry) and the built-in backend's patient and care-flow pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.care_flows import find_care_flow
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
) -> HTMLResponse:
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
    next_url = None
    if next_token:
        next_url = "/ui/requests?" + urlencode(
            {**{k: v for k, v in chosen.items() if v}, "page_token": next_token}
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
        errors=errors,
        hook_names={h.id: h.name for h in hooks},
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(
    request_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    detail = await services.requests.get(request_id)
    retryable = await services.requests.retryable(request_id)
    return render(
        request,
        services,
        sid,
        "request.html",
        detail=detail,
        retryable=retryable,
        retried=request.query_params.get("retried"),
    )


@router.post("/requests/{request_id}/retry")
async def retry(
    request_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        await services.requests.retry(request_id)
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
