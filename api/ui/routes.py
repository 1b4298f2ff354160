"""Server-rendered admin pages under ``/ui/`` (not in the OpenAPI schema).

They call the same services as ``/v1`` (store, webhook service, request log) server-side, with
their own session cookie; htmx (pinned, served from ``/ui/static``) adds the live preview and the
auto-refreshing test payload panel, and every page works without JavaScript.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.deps import Services, get_services
from api.request_models import RequestFilters
from api.services.webhooks import to_public
from api.ui import session
from careflow.errors import DomainError, from_validation
from careflow.models import (
    CareFlowDefinition,
    DataPointMapping,
    IdentifierSystem,
    PatientIdentifierMapping,
    PreviewRequest,
    RequestError,
    RequestStatus,
    WebhookCreate,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)

router = APIRouter(prefix="/ui", include_in_schema=False)

ServicesDep = Annotated[Services, Depends(get_services)]
STATUSES = [s.value for s in RequestStatus]


class SignInRequiredError(Exception):
    """No valid session: the handler redirects to the sign-in page."""


class CsrfError(Exception):
    """A POST without the session's CSRF token."""


class FormError(Exception):
    """A form field sent twice, or sent as a file: answered with a 422 page."""


def current_session(request: Request, services: ServicesDep) -> str:
    sid = session.session_id(request, services.admin_token)
    if sid is None:
        raise SignInRequiredError
    return sid


SessionDep = Annotated[str, Depends(current_session)]


async def form_with_csrf(
    request: Request, services: ServicesDep, sid: SessionDep
) -> dict[str, Any]:
    """The posted form, after checking its CSRF token (field ``csrf`` or ``X-CSRF-Token``)."""
    form = await request.form()
    given = form.get("csrf") or request.headers.get("x-csrf-token")
    if not session.csrf_ok(services.admin_token, sid, given if isinstance(given, str) else None):
        await form.close()
        raise CsrfError
    fields: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1 or not isinstance(values[0], str):
            await form.close()  # release uploaded files at once
            raise FormError(key)
        fields[key] = values[0]
    return fields


FormDep = Annotated[dict[str, Any], Depends(form_with_csrf)]


def render(
    request: Request,
    services: Services,
    sid: str | None,
    name: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    csrf = session.csrf_token(services.admin_token, sid) if sid else ""
    return templates.TemplateResponse(
        request, name, {"csrf": csrf, "signed_in": sid is not None, **context}, status_code
    )


def _errors(exc: Exception) -> list[RequestError]:
    if isinstance(exc, DomainError):
        return exc.errors
    if isinstance(exc, ValidationError):
        return from_validation(exc.errors())
    raise exc


# --- sign in --------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep) -> HTMLResponse:
    return render(request, services, None, "login.html")


@router.post("/login")
async def login(request: Request, services: ServicesDep) -> Response:
    form = await request.form()
    token = str(form.get("token") or "")
    if not hmac.compare_digest(token.encode(), services.admin_token.encode()):
        return render(
            request, services, None, "login.html", 401, error="That is not the admin token."
        )
    response = RedirectResponse("/ui/webhooks", status_code=303)
    response.set_cookie(
        session.COOKIE,
        session.new_session(services.admin_token),
        max_age=session.MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
def logout(form: FormDep) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(session.COOKIE, path="/ui")
    return response


@router.get("/", response_class=HTMLResponse)
def home(sid: SessionDep) -> Response:
    return RedirectResponse("/ui/webhooks", status_code=303)


# --- settings: identifier systems and care flow definitions ----------------------------------


def _settings_page(
    request: Request, services: Services, sid: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        services,
        sid,
        "settings.html",
        status_code,
        systems=services.store.configuration.list_identifier_systems(),
        definitions=services.store.configuration.list_care_flow_definitions(),
        **context,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, services: ServicesDep, sid: SessionDep) -> HTMLResponse:
    return _settings_page(request, services, sid)


@router.post("/identifier-systems")
def create_identifier_system(
    request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        item = IdentifierSystem(
            name=form.get("name", ""),
            system=form.get("system", ""),
            description=form.get("description", ""),
        )
        services.store.configuration.create_identifier_system(item)
        services.config.refresh()
    except (DomainError, ValidationError) as exc:
        return _settings_page(request, services, sid, 422, errors=_errors(exc))
    return RedirectResponse("/ui/settings", status_code=303)


@router.post("/care-flow-definitions")
def save_care_flow_definition(
    request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    """Create or replace a care flow definition; data points are given as a JSON list."""
    try:
        points = json.loads(form.get("data_point_definitions") or "[]")
        if not isinstance(points, list):
            raise json.JSONDecodeError("not a list", "", 0)
        item = CareFlowDefinition(
            id=form.get("id", ""),
            title=form.get("title", ""),
            published=form.get("published") == "on",
            data_point_definitions=points,
        )
        if form.get("existing") == "1":
            services.store.configuration.update_care_flow_definition(item)
        else:
            services.store.configuration.create_care_flow_definition(item)
        services.config.refresh()
    except (json.JSONDecodeError, RecursionError):
        error = RequestError(code="invalid_json", message="data points must be a JSON list")
        return _settings_page(request, services, sid, 422, errors=[error])
    except (DomainError, ValidationError) as exc:
        return _settings_page(request, services, sid, 422, errors=_errors(exc))
    return RedirectResponse("/ui/settings", status_code=303)


@router.get("/care-flow-definitions/{definition_id}", response_class=HTMLResponse)
def care_flow_definition_page(
    definition_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    definition = services.store.configuration.get_care_flow_definition(definition_id)
    points = [
        p.model_dump(mode="json", exclude_none=True) for p in definition.data_point_definitions
    ]
    return render(
        request,
        services,
        sid,
        "care_flow_definition.html",
        definition=definition,
        points_json=json.dumps(points, indent=2, ensure_ascii=False),
    )


# --- webhooks -----------------------------------------------------------------------------------


async def _status_counts(services: Services, webhook_id: str) -> dict[str, int]:
    """One count per status (SQL visibility has no GROUP BY on custom attributes)."""

    async def count(status: str) -> int:
        filters = RequestFilters(webhook_id=webhook_id, status=RequestStatus(status))
        try:
            return await services.requests.count(filters)
        except Exception:  # Temporal unreachable: the page still renders, with "?"
            return -1

    counts = await asyncio.gather(*(count(s) for s in STATUSES if s != "TEST"))
    return dict(zip([s for s in STATUSES if s != "TEST"], counts, strict=True))


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, services: ServicesDep, sid: SessionDep) -> HTMLResponse:
    hooks = await asyncio.to_thread(services.store.configuration.list_webhooks)
    base = services.settings.public_base_url
    counts = await asyncio.gather(*(_status_counts(services, h.id) for h in hooks))
    rows = [{"hook": to_public(h, base), "counts": c} for h, c in zip(hooks, counts, strict=True)]
    definitions = await asyncio.to_thread(services.store.configuration.list_care_flow_definitions)
    return render(
        request,
        services,
        sid,
        "webhooks.html",
        rows=rows,
        definitions=definitions,
        statuses=[s for s in STATUSES if s != "TEST"],
    )


@router.post("/webhooks")
def create_webhook(
    request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    try:
        hook = services.webhooks.create(
            WebhookCreate(
                name=form.get("name", ""),
                care_flow_definition_id=form.get("care_flow_definition_id", ""),
            )
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
    """The live preview fragment: what each proposed path gives on the newest test payload."""
    try:
        mappings, identifier = _proposal(form)
        answer = services.webhooks.preview(
            webhook_id,
            PreviewRequest(data_point_mappings=mappings, patient_identifier=identifier),
        )
    except (DomainError, ValidationError) as exc:
        return render(request, services, sid, "_preview.html", answer=None, errors=_errors(exc))
    return render(request, services, sid, "_preview.html", answer=answer, errors=answer.errors)


@router.get("/webhooks/{webhook_id}/test-payloads", response_class=HTMLResponse)
def test_payloads(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    items = services.store.test_payloads.list_test_payloads(webhook_id)
    return render(request, services, sid, "_test_payloads.html", items=items)


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
    hooks = await asyncio.to_thread(services.store.configuration.list_webhooks)
    definitions = await asyncio.to_thread(services.store.configuration.list_care_flow_definitions)
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
def care_flow_page(
    care_flow_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    flow = services.store.patients.get_care_flow(care_flow_id)
    return render(request, services, sid, "care_flow.html", flow=flow)


def error_page(request: Request, status_code: int, errors: list[RequestError]) -> HTMLResponse:
    """An HTML error page for ``/ui`` (the JSON error shape stays for the API)."""
    return templates.TemplateResponse(
        request, "error.html", {"errors": errors, "signed_in": True, "csrf": ""}, status_code
    )
