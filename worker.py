"""The worker: wires the workflow and the activities to the task queue. ``python worker.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from opentelemetry.trace import TracerProvider
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.alerts import AlertActivities
from activities.backend_telemetry import instrument
from activities.care_flows import CareFlowActivities
from activities.debounce import DebounceActivities
from activities.patients import PatientActivities
from activities.validation import ValidationActivities
from backends.base import CareFlowBackend
from backends.builtin import BuiltinBackend
from careflow import logs
from careflow.keyed_ids import id_hash_key
from careflow.settings import Settings, get_settings
from infra import runtime, temporal, tracing
from persistence.config_cache import ConfigCache
from persistence.store import Store
from workflows.alerts import AlertWorkflow
from workflows.debounce import DebounceWindowWorkflow
from workflows.request import WebhookRequestWorkflow
from workflows.telemetry import RequestTelemetryInterceptor


def build_worker(
    client: Client,
    store: Store,
    settings: Settings,
    executor: ThreadPoolExecutor,
    backend: CareFlowBackend | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Worker:
    """A worker for ``settings.careflow_task_queue`` with the three activities on ``store``.

    Activities are synchronous (SQLAlchemy) and run on ``executor``; ``backend`` defaults to the
    built-in one on ``store``, and every backend call is observed (span, latency, failures).
    With ``tracer_provider`` the workflow and activities are traced (``TracingInterceptor``).
    The alert workflow and ``send_alert`` are always registered (the API starts rejection-rate
    alerts); FAILED requests start one when ``CAREFLOW_ALERT_WEBHOOK_URL`` is set.
    """
    logs.silence_payload_debug_logs()
    config = ConfigCache(store, settings.config_refresh_seconds)
    kind = getattr(backend, "kind", None) or (
        "builtin" if backend is None else type(backend).__name__.removesuffix("Backend").lower()
    )
    observed = instrument(backend or BuiltinBackend(store), kind, tracing.tracer(tracer_provider))
    validation = ValidationActivities(config, id_hash_key(settings))
    debounce = DebounceActivities()
    patients = PatientActivities(observed)
    care_flows = CareFlowActivities(observed)
    alerts = AlertActivities(
        settings.careflow_alert_webhook_url or "",
        settings.careflow_alert_webhook_secret,
        settings.ui_base_url,
        settings.temporal_namespace,
    )
    interceptors: list[Interceptor] = [
        *tracing.temporal_interceptors(tracer_provider),
        RequestTelemetryInterceptor(alerts=bool(settings.careflow_alert_webhook_url)),
    ]
    return Worker(
        client,
        task_queue=settings.careflow_task_queue,
        workflows=[WebhookRequestWorkflow, DebounceWindowWorkflow, AlertWorkflow],
        activities=[
            validation.validate_request,
            patients.resolve_patient,
            care_flows.start_care_flow,
            care_flows.find_active_care_flow,
            debounce.claim_debounce_window,
            alerts.send_alert,
        ],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        interceptors=interceptors,
    )


async def main() -> None:
    settings = get_settings()
    logs.configure(log_format=settings.careflow_log_format)
    store = Store(settings.sqlalchemy_url)
    store.migrate()
    provider = tracing.tracer_provider_from_environment("careflow-worker")
    tracing.instrument_httpx(provider)
    client = await temporal.connect(settings, runtime=runtime.worker_runtime(settings))
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            worker = build_worker(client, store, settings, executor, tracer_provider=provider)
            logging.getLogger("careflow.worker").info(
                "worker polling task queue %s", settings.careflow_task_queue
            )
            await worker.run()
    finally:
        if provider is not None:
            provider.shutdown()


if __name__ == "__main__":
    # Ctrl-C / SIGINT stops the worker even when it was started with SIGINT ignored (an ignored
    # disposition is inherited across exec, and then neither Python nor asyncio installs a
    # handler), as ``cli.py run`` does for itself.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
