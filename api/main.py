"""The API application: ingest routes, admin routes, health; resources built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from api.deps import Services
from api.ingest import IngestService
from api.request_log import RequestLog
from api.routes import (
    backend,
    care_flow_definitions,
    health,
    identifier_systems,
    ingest,
    requests,
    webhooks,
)
from api.services.webhooks import WebhookService
from api.ui import routes as ui
from careflow.errors import DomainError, TransientStoreError, from_validation
from careflow.models import RequestError
from careflow.settings import Settings, get_settings
from infra import temporal
from persistence.config_cache import ConfigCache
from persistence.store import Store

log = logging.getLogger("careflow.api")


async def _refresh_config(config: ConfigCache, every: float) -> None:
    while True:
        try:
            await asyncio.to_thread(config.refresh)
        except TransientStoreError:
            log.warning("configuration refresh failed; keeping the last snapshot")
        await asyncio.sleep(every)


def _temporal_unavailable() -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": "temporal_unavailable", "message": "Temporal is unreachable"}]},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` defaults to the environment's (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        store = Store(cfg.sqlalchemy_url)
        await asyncio.to_thread(store.migrate)
        config = ConfigCache(store, cfg.config_refresh_seconds)
        await asyncio.to_thread(config.refresh)
        client = await temporal.connect(cfg, lazy=True)
        request_log = RequestLog(client, cfg.ui_base_url)
        app.state.services = Services(
            settings=cfg,
            admin_token=cfg.admin_token(),
            store=store,
            config=config,
            client=client,
            requests=request_log,
            ingest=IngestService(client, config, cfg, request_log, store),
            webhooks=WebhookService(store, config),
        )
        refresher = asyncio.create_task(_refresh_config(config, cfg.config_refresh_seconds))
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            store.dispose()

    app = FastAPI(
        title="careflow-webhooks",
        version="0.1.0",
        description="Incoming webhooks that start care flows; one Temporal workflow per request.",
        lifespan=lifespan,
    )
    for router in (
        ingest.router,
        identifier_systems.router,
        care_flow_definitions.router,
        webhooks.router,
        requests.router,
        backend.router,
        health.router,
        ui.router,
    ):
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=ui.STATIC_DIR), name="ui-static")

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
            return ui.error_page(request, exc.status_code, exc.errors)
        return JSONResponse(
            {"errors": [e.model_dump(exclude_none=True) for e in exc.errors]},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def validation_error(
        _: Request, exc: RequestValidationError | ValidationError
    ) -> JSONResponse:
        errors = from_validation(exc.errors())
        return JSONResponse(
            {"errors": [e.model_dump(exclude_none=True) for e in errors]}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"errors": [{"code": code, "message": str(exc.detail)}]},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(TransientStoreError)
    async def store_unavailable(_: Request, exc: TransientStoreError) -> JSONResponse:
        return JSONResponse(
            {"errors": [{"code": "database_unavailable", "message": "try again shortly"}]},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RPCError)
    async def temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal call failed: %s", exc.status.name if exc.status else "unknown")
        return _temporal_unavailable()

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RuntimeError) and "client connect" in str(exc):
            return _temporal_unavailable()
        error_id = uuid.uuid4().hex
        log.exception("unhandled error %s: %s", error_id, type(exc).__name__)
        return JSONResponse(
            {
                "errors": [
                    {
                        "code": "internal_error",
                        "message": "an internal error occurred",
                        "error_id": error_id,
                    }
                ]
            },
            status_code=500,
        )

    return app


app = create_app()
