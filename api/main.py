"""The API application: ingest routes, admin routes, health; resources built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors
from api.deps import Services
from api.ingest import IngestService
from api.paging import PageTokens
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
from api.services.configuration import ConfigurationService
from api.services.webhooks import WebhookService
from api.ui import common as ui_common
from api.ui import routes as ui
from careflow.errors import TransientStoreError
from careflow.keyed_ids import id_hash_key
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` defaults to the environment's (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        store = Store(cfg.sqlalchemy_url, cfg.careflow_test_payloads_max_bytes)
        await asyncio.to_thread(store.migrate)
        config = ConfigCache(store, cfg.config_refresh_seconds)
        await asyncio.to_thread(config.refresh)
        client = await temporal.connect(cfg, lazy=True)
        admin_token = cfg.admin_token()
        id_hash_key(cfg)  # created now, not on the first debounced request
        page_tokens = PageTokens(admin_token)
        request_log = RequestLog(client, cfg.ui_base_url, page_tokens, store.retry_claims)
        app.state.services = Services(
            settings=cfg,
            admin_token=admin_token,
            page_tokens=page_tokens,
            store=store,
            config=config,
            client=client,
            requests=request_log,
            ingest=IngestService(client, config, cfg, request_log, store),
            webhooks=WebhookService(store, config),
            configuration=ConfigurationService(store, config),
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
        ui.favicon_router,
    ):
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=ui_common.STATIC_DIR), name="ui-static")

    errors.install(app)
    return app


app = create_app()
