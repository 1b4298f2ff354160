"""Errors → HTTP: the status of each domain error class and the app's exception handlers.

The domain (``careflow.errors``) names what went wrong with a stable code; only this module
decides the HTTP answer. Every answer is JSON ``{"errors": [{"code", "message", ...}]}`` (pages
under ``/ui/`` get an HTML error page instead); nothing quotes a payload value.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from api.ui import common as ui
from careflow.errors import (
    ConflictError,
    DomainError,
    InvalidConfigError,
    NotFoundError,
    TransientStoreError,
    UnauthorizedError,
    from_validation,
)
from careflow.models import RequestError

log = logging.getLogger("careflow.api")

# Most specific first: the first class an error is an instance of decides its status.
HTTP_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (UnauthorizedError, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidConfigError, 422),
    (DomainError, 400),
)


def http_status(exc: DomainError) -> int:
    """The HTTP status for a domain error.

    Args:
        exc: any ``DomainError``.

    Returns:
        401, 404, 409, 422, or 400 for a plain ``DomainError``.
    """
    return next(status for cls, status in HTTP_STATUS if isinstance(exc, cls))


def errors_response(
    errors: list[RequestError], status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error answer ``{"errors": [...]}`` with ``status``."""
    body = {"errors": [e.model_dump(exclude_none=True) for e in errors]}
    return JSONResponse(body, status_code=status, headers=headers)


def temporal_unavailable() -> JSONResponse:
    """503 ``temporal_unavailable`` with ``Retry-After: 5``."""
    error = RequestError(code="temporal_unavailable", message="Temporal is unreachable")
    return errors_response([error], 503, {"Retry-After": "5"})


def _is_lazy_connect_failure(exc: Exception) -> bool:
    # temporalio's lazy client raises a bare RuntimeError("Failed client connect: …") on first
    # use while the server is down; the SDK offers no typed error for it.
    return isinstance(exc, RuntimeError) and "client connect" in str(exc)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ui.SignInRequiredError)
    async def sign_in(_: Request, exc: ui.SignInRequiredError) -> Response:
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(ui.CsrfError)
    async def csrf(request: Request, exc: ui.CsrfError) -> Response:
        error = RequestError(code="csrf_failed", message="the form expired; reload and try again")
        return ui.error_page(request, 403, [error])

    @app.exception_handler(ui.FormError)
    async def form_error(request: Request, exc: ui.FormError) -> Response:
        error = RequestError(
            code="invalid_form", message=f"send the field {exc.args[0]!r} once, as text"
        )
        return ui.error_page(request, 422, [error])

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if request.url.path.startswith("/ui/"):
            return ui.error_page(request, http_status(exc), exc.errors)
        return errors_response(exc.errors, http_status(exc))

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def validation_error(
        _: Request, exc: RequestValidationError | ValidationError
    ) -> JSONResponse:
        return errors_response(from_validation(exc.errors()), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        error = RequestError(code=code, message=str(exc.detail))
        return errors_response([error], exc.status_code, exc.headers)

    @app.exception_handler(TransientStoreError)
    async def store_unavailable(_: Request, exc: TransientStoreError) -> JSONResponse:
        error = RequestError(code="database_unavailable", message="try again shortly")
        return errors_response([error], 503, {"Retry-After": "1"})

    @app.exception_handler(RPCError)
    async def temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal call failed: %s", exc.status.name if exc.status else "unknown")
        return temporal_unavailable()

    app.add_middleware(UnexpectedErrors)


def unexpected_response(exc: Exception) -> JSONResponse:
    """503 for a lazy Temporal client that cannot connect; else 500 ``internal_error`` with an
    ``error_id``, logged with the exception's class and stack frames only: a driver's message may
    quote the values it was given (PHI), so neither the message nor its causes are logged."""
    if _is_lazy_connect_failure(exc):
        return temporal_unavailable()
    error_id = uuid.uuid4().hex
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled error %s: %s\n%s", error_id, type(exc).__name__, frames)
    body = {"code": "internal_error", "message": "an internal error occurred"}
    return JSONResponse({"errors": [{**body, "error_id": error_id}]}, status_code=500)


class UnexpectedErrors:
    """ASGI middleware answering any unhandled exception with ``unexpected_response``.

    A middleware rather than an ``Exception`` handler: Starlette re-raises after running such a
    handler, and the server then logs the full exception text.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client went away mid-body: nobody to answer, nothing to report but one line.
            # The path may name no known resource (sender text): its first segment only.
            section = "/" + scope["path"].lstrip("/").split("/", 1)[0]
            log.info("client disconnected before sending its whole body: %s/…", section)
        except Exception as exc:
            response = unexpected_response(exc)
            if not started:  # else the answer is already on its way; only the log line remains
                await response(scope, receive, send)
