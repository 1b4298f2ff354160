"""Server-rendered admin pages under ``/ui/`` (not in the OpenAPI schema).

They call the same services as ``/v1`` (store, webhook service, request log) server-side, with
their own session cookie; htmx (pinned, served from ``/ui/static``) adds the live preview and the
auto-refreshing test payload panel, and every page works without JavaScript.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import Services
from api.ui import conditions, requests, session, webhooks
from api.ui.common import (
    STATIC_DIR,
    FormDep,
    ServicesDep,
    SessionDep,
    _errors,
    render,
    ui_sessions,
)
from api.ui.definition_form import points_from_form, rows_of
from careflow.errors import ConflictError, DomainError
from careflow.models import (
    CareFlowDefinition,
    IdentifierSystem,
)

router = APIRouter(prefix="/ui", include_in_schema=False)
favicon_router = APIRouter(include_in_schema=False)


@favicon_router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The icon browsers ask for at the root (a 32×32 PNG in an ICO)."""
    return FileResponse(
        STATIC_DIR / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# --- sign in --------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep) -> HTMLResponse:
    return render(request, services, None, "login.html")


@router.post("/login")
async def login(request: Request, services: ServicesDep) -> Response:
    throttle = session.sign_in_throttle(
        request.app.state, services.settings.careflow_ui_sign_in_limit
    )
    # The peer address: uvicorn rewrites it from X-Forwarded-For only for the proxies named in
    # CAREFLOW_FORWARDED_ALLOW_IPS (cli.api_command), so a client cannot pick its own key.
    client = request.client.host if request.client else "unknown"
    # Counted before the body is read: N slow parallel sign-ins cannot all pass one check.
    wait = throttle.attempt(client)
    if wait is not None:
        page = render(
            request,
            services,
            None,
            "login.html",
            429,
            error=f"Too many failed sign-ins: try again in {wait} s.",
        )
        page.headers["Retry-After"] = str(wait)
        return page
    form = await request.form()
    token = str(form.get("token") or "")
    if not hmac.compare_digest(token.encode(), services.admin_token.encode()):
        return render(
            request, services, None, "login.html", 401, error="That is not the admin token."
        )
    throttle.succeeded(client)
    cookie = await asyncio.to_thread(ui_sessions(services).start)
    response = RedirectResponse("/ui/webhooks", status_code=303)
    response.set_cookie(
        session.COOKIE,
        cookie,
        max_age=session.MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
def logout(request: Request, services: ServicesDep, form: FormDep) -> Response:
    """End the session for good: its record is deleted, so a saved cookie opens nothing."""
    ui_sessions(services).end(request)
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
        rows=rows_of(None),
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
        services.configuration.create_identifier_system(item)
    except (DomainError, ValidationError) as exc:
        return _settings_page(request, services, sid, 422, errors=_errors(exc))
    return RedirectResponse("/ui/settings", status_code=303)


@router.post("/care-flow-definitions")
def save_care_flow_definition(
    request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    """Create or replace a care flow definition from the form (one row per data point).

    A change that would leave enabled webhooks incomplete is a 409 page naming them, unless
    the form's ``force`` box is ticked: then they are disabled and the page lists them."""
    try:
        item = CareFlowDefinition.model_validate(
            {
                "id": form.get("id", ""),
                "title": form.get("title", ""),
                "published": form.get("published") == "on",
                "data_point_definitions": points_from_form(form),
            }
        )
        saved = services.configuration.save_care_flow_definition_gated(
            item, replace=form.get("existing") == "1", force=form.get("force") == "on"
        )
    except ConflictError as exc:  # e.g. it would leave enabled webhooks incomplete
        return _settings_page(request, services, sid, 409, errors=exc.errors)
    except (DomainError, ValidationError) as exc:
        return _settings_page(request, services, sid, 422, errors=_errors(exc))
    if saved.disabled_webhooks:
        return _settings_page(request, services, sid, disabled_webhooks=saved.disabled_webhooks)
    return RedirectResponse("/ui/settings", status_code=303)


@router.get("/care-flow-definitions/{definition_id}", response_class=HTMLResponse)
def care_flow_definition_page(
    definition_id: str, request: Request, services: ServicesDep, sid: SessionDep
) -> HTMLResponse:
    definition = services.store.configuration.get_care_flow_definition(definition_id)
    return render(
        request,
        services,
        sid,
        "care_flow_definition.html",
        definition=definition,
        rows=rows_of(definition),
    )


router.include_router(webhooks.router)
router.include_router(conditions.router)
router.include_router(requests.router)
