"""What every ``/ui`` page shares: templates, the session and CSRF dependencies, rendering and
the HTML error page."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.deps import Services, get_services
from api.ui import session
from careflow.errors import DomainError, from_validation
from careflow.models import CareFlowDefinition, RequestError, RequestStatus, ValueType, Webhook

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)

ServicesDep = Annotated[Services, Depends(get_services)]
# Lifecycle order: in flight, then how requests end, then the ones never processed.
_LIFECYCLE = ("RECEIVED", "SCHEDULED", "PROCESSING", "SUCCESS", "FAILED", "REJECTED", "IGNORED")
STATUSES = [s for s in _LIFECYCLE if s in RequestStatus.__members__] + [
    s.value for s in RequestStatus if s.value not in _LIFECYCLE
]


def when(value: datetime | None, ms: bool = False) -> str:
    """A time for the pages, always with its zone: ``2026-01-02 03:04:05 UTC`` (with ``ms``,
    ``…05.678 UTC``)."""
    if value is None:
        return ""
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (text[:-3] if ms else text[:-7]) + " UTC"


templates.env.filters["when"] = when
templates.env.globals["value_types"] = [t.value for t in ValueType]


class SignInRequiredError(Exception):
    """No valid session: the handler redirects to the sign-in page."""


class CsrfError(Exception):
    """A POST without the session's CSRF token."""


class FormError(Exception):
    """A form field sent twice, or sent as a file: answered with a 422 page."""


def ui_sessions(services: Services) -> session.UiSessions:
    """The ``/ui`` sessions, checked against the store (shared by every API replica)."""
    return session.UiSessions(
        services.store.ui_sessions,
        services.admin_token,
        services.settings.careflow_ui_session_idle_seconds,
    )


def current_session(request: Request, services: ServicesDep) -> str:
    sid = ui_sessions(services).current(request)
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


async def webhooks_and_definitions(
    services: Services,
) -> tuple[list[Webhook], list[CareFlowDefinition]]:
    """The live webhooks and every care flow definition, read off the event loop."""
    hooks = await asyncio.to_thread(services.store.configuration.list_webhooks)
    definitions = await asyncio.to_thread(services.store.configuration.list_care_flow_definitions)
    return hooks, definitions


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


def error_page(request: Request, status_code: int, errors: list[RequestError]) -> HTMLResponse:
    """An HTML error page for ``/ui`` (the JSON error shape stays for the API)."""
    return templates.TemplateResponse(
        request, "error.html", {"errors": errors, "signed_in": True, "csrf": ""}, status_code
    )
