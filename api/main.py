"""The API application: ingest routes, admin routes, health; resources built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from api import errors
from api.deps import Services
from api.ingest import IngestService
from api.metrics import ApiMetrics
from api.paging import PageTokens
from api.received_at import ReceivedAt
from api.request_log import RequestLog
from api.request_retry import RequestRetry
from api.routes import (
    backend,
    care_flow_definitions,
    codec,
    health,
    identifier_systems,
    ingest,
    metrics,
    requests,
    webhooks,
)
from api.services.awell_import import AwellImportService
from api.services.configuration import ConfigurationService
from api.services.webhooks import WebhookService
from api.telemetry import IngestTelemetry, RejectionRateAlerts
from api.ui import common as ui_common
from api.ui import routes as ui
from api.ui.session import token_fingerprint
from backends.awell_api import AwellApi
from careflow import logs
from careflow.errors import TransientStoreError
from careflow.keyed_ids import id_hash_key
from careflow.settings import Settings, get_settings
from infra import temporal, tracing
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


def awell_api(settings: Settings) -> AwellApi | None:
    """Awell's API for the import, when configured."""
    if "awell" in settings.unconfigured_backends or settings.awell_api_key is None:
        return None
    assert settings.awell_api_url is not None
    return AwellApi(
        settings.awell_api_url,
        settings.awell_api_key.get_secret_value(),
        timeout=settings.awell_timeout_seconds,
    )


def _serve_metrics_apart(port: int, host: str, api_metrics: ApiMetrics) -> Any:
    """``CAREFLOW_METRICS_PORT``: the metrics on a port of their own (prometheus-client's server).

    Returns:
        The HTTP server, to ``shutdown()`` and ``server_close()`` when the app stops.
    """
    server, _thread = start_http_server(port, host, registry=api_metrics.registry)
    return server


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """Build the app. ``settings`` defaults to the environment's (tests pass their own).

    ``tracer_provider``: traces of the ingest routes and the workflow starts go there; by
    default one configured from the ``OTEL_*`` environment (None, no tracing, when unset).
    """
    provider = tracer_provider
    owns_provider = False
    if provider is None:
        provider = tracing.tracer_provider_from_environment("careflow-api")
        owns_provider = provider is not None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        logs.configure(log_format=cfg.careflow_log_format)
        store = Store(
            cfg.sqlalchemy_url, cfg.careflow_test_payloads_max_bytes, temporal.key_ring(cfg)
        )
        await asyncio.to_thread(store.migrate)
        config = ConfigCache(store, cfg.config_refresh_seconds)
        await asyncio.to_thread(config.refresh)
        client = await temporal.connect(
            cfg, lazy=True, interceptors=tracing.temporal_interceptors(provider)
        )
        api_metrics = ApiMetrics(cache_age=config.age_seconds)
        metrics_server = None
        if cfg.careflow_metrics_port:
            metrics_server = _serve_metrics_apart(
                cfg.careflow_metrics_port, cfg.careflow_api_host, api_metrics
            )
        rejection_alerts = (
            RejectionRateAlerts(client, cfg) if cfg.careflow_alert_rejection_rate else None
        )
        admin_token = cfg.admin_token()
        id_hash_key(cfg)  # created now, not on the first debounced request
        # Sessions of an earlier admin token end for good (they must not return with it).
        fingerprint = token_fingerprint(admin_token)
        await asyncio.to_thread(store.ui_sessions.delete_other_tokens, fingerprint)
        page_tokens = PageTokens(admin_token)
        request_log = RequestLog(client, cfg.ui_base_url, page_tokens)
        configuration = ConfigurationService(
            store,
            config,
            cfg.unconfigured_backends,
            frozenset({cfg.careflow_task_queue, cfg.patient_task_queue}),
        )
        app.state.services = Services(
            settings=cfg,
            admin_token=admin_token,
            page_tokens=page_tokens,
            store=store,
            config=config,
            client=client,
            requests=request_log,
            retries=RequestRetry(client, request_log, store.retry_claims),
            ingest=IngestService(client, config, cfg, request_log, store, api_metrics),
            webhooks=WebhookService(store, config, cfg.unconfigured_backends),
            configuration=configuration,
            metrics=api_metrics,
            telemetry=IngestTelemetry(api_metrics, rejection_alerts),
            awell_import=AwellImportService(store, configuration, awell_api(cfg)),
        )
        refresher = asyncio.create_task(_refresh_config(config, cfg.config_refresh_seconds))
        # What start-up built lives as long as the process: out of the collector's view, a full
        # collection while serving scans only what came since (full collections of 91 and
        # 486 ms became one of 69 ms in bench/draining.py's run at load 17-18).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            app.state.services.ingest.close()
            store.dispose()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            if owns_provider and provider is not None:
                provider.shutdown()

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
        metrics.router,
        ui.router,
        ui.favicon_router,
        codec.router,
    ):
        app.include_router(router)
    app.add_middleware(codec.CodecCors)
    app.add_middleware(ingest.OverloadFirst)  # overload answers skip routing and the rest
    app.mount("/ui/static", StaticFiles(directory=ui_common.STATIC_DIR), name="ui-static")

    errors.install(app)
    app.add_middleware(ReceivedAt)  # last added runs first
    if provider is not None:
        tracing.honour_sender_trace_ids_only()  # a sender's tracestate and baggage: dropped
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            excluded_urls=tracing.UNTRACED_URLS,
            exclude_spans=["receive", "send"],
            server_request_hook=tracing.drop_query_attributes,
        )
    return app


app = create_app()
