"""The worker: wires the workflow and the activities to the task queue. ``python worker.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor

from opentelemetry.trace import Tracer, TracerProvider
from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.alerts import AlertActivities
from activities.backend_telemetry import instrument
from activities.care_flows import CareFlowActivities
from activities.debounce import DebounceActivities
from activities.patients import PatientActivities
from activities.remote_patients import RemotePatientActivities
from activities.validation import ValidationActivities
from backends.awell import AwellBackend
from backends.awell_api import AwellApi
from backends.base import CareFlowBackend
from backends.builtin import BuiltinBackend
from backends.loop import LoopRunner
from backends.registry import BackendRegistry
from backends.temporal_workflow import TemporalWorkflowBackend
from careflow import logs
from careflow.keyed_ids import id_hash_key
from careflow.settings import Settings, get_settings
from infra import runtime, temporal, tracing
from infra.codec import EncryptionCodec, quiet_sdk_tracebacks
from persistence.config_cache import ConfigCache
from persistence.store import Store
from workflows.alerts import AlertWorkflow
from workflows.debounce import DebounceWindowWorkflow
from workflows.patient_resolution import PatientResolutionWorkflow
from workflows.request import WebhookRequestWorkflow
from workflows.telemetry import RequestTelemetryInterceptor


def build_backends(
    client: Client,
    store: Store,
    settings: Settings,
    builtin: CareFlowBackend | None = None,
    tracer: Tracer | None = None,
) -> BackendRegistry:
    """The care-flow backends this worker can start in, chosen per definition, each call
    observed (span, latency, failures by backend kind).

    Call from the event loop the client runs on: the temporal backend runs the client's
    coroutines there from the activity threads.
    """
    tracer = tracer or tracing.tracer(None)
    runner = LoopRunner(asyncio.get_running_loop())
    others: dict[str, CareFlowBackend] = {
        "temporal": instrument(
            TemporalWorkflowBackend(
                store, client, runner, pickup_seconds=settings.care_flow_pickup_seconds
            ),
            "temporal",
            tracer,
        )
    }
    awell = build_awell(client, store, settings, runner)
    if awell is not None:
        others["awell"] = instrument(awell, "awell", tracer)
    kind = getattr(builtin, "kind", None) or (
        "builtin" if builtin is None else type(builtin).__name__.removesuffix("Backend").lower()
    )
    observed = instrument(builtin or BuiltinBackend(store), kind, tracer)
    return BackendRegistry(store, observed, others)


def build_awell(
    client: Client, store: Store, settings: Settings, runner: LoopRunner | None = None
) -> AwellBackend | None:
    """The awell backend when ``AWELL_API_URL`` and ``AWELL_API_KEY`` are set, else None."""
    if "awell" in settings.unconfigured_backends:
        return None
    assert settings.awell_api_url and settings.awell_api_key
    api = AwellApi(
        settings.awell_api_url,
        settings.awell_api_key.get_secret_value(),
        timeout=settings.awell_timeout_seconds,
    )
    return AwellBackend(
        store,
        api,
        client,
        runner or LoopRunner(asyncio.get_running_loop()),
        settings.patient_task_queue,
        id_hash_key(settings),
        # An unanswered call may still land in Awell for a while: three client timeouts.
        settle_seconds=3 * settings.awell_timeout_seconds,
    )


def build_patient_worker(
    client: Client, store: Store, settings: Settings, executor: ThreadPoolExecutor
) -> Worker:
    """The patient-resolution worker on ``settings.patient_task_queue``: remote backends'
    find-or-create, serialised per identifier by ``PatientResolutionWorkflow``. A separate
    worker, so ``resolve_patient`` activities waiting on a resolution never hold the activity
    slots the resolution itself needs."""
    activities = RemotePatientActivities(build_awell(client, store, settings))
    return Worker(
        client,
        task_queue=settings.patient_task_queue,
        workflows=[PatientResolutionWorkflow],
        activities=[activities.resolve_remote_patient],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """Temporal's workflow sandbox when ``CAREFLOW_WORKFLOW_SANDBOX`` is on, else none.

    The sandbox refuses non-deterministic calls (``datetime.now``, ``random``, I/O) and imports
    each workflow module afresh per run; it also enters the sandbox (compiling a code string)
    for every payload it encodes or decodes. The test suite runs every workflow in it with its
    default restrictions, so a non-deterministic call fails CI; production workers leave it off.
    Measured in a drain (``bench/shape.py``, issue 19): worker CPU 27.2 → 18.3 ms per request,
    drain rate 37.4 → 52.7 requests/s.
    """
    if settings.careflow_workflow_sandbox:
        return SandboxedWorkflowRunner()
    return UnsandboxedWorkflowRunner()


def build_worker(
    client: Client,
    store: Store,
    settings: Settings,
    executor: ThreadPoolExecutor,
    backend: CareFlowBackend | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Worker:
    """A worker for ``settings.careflow_task_queue`` with the three activities on ``store``.

    Activities are synchronous (SQLAlchemy) and run on ``executor``; ``backend`` replaces the
    built-in one on ``store`` (fault-injection tests). Every backend call is observed (span,
    latency, failures). With ``tracer_provider`` the workflow and activities are traced
    (``TracingInterceptor``). The alert workflow and ``send_alert`` are always registered (the
    API starts rejection-rate alerts); FAILED requests start one when
    ``CAREFLOW_ALERT_WEBHOOK_URL`` is set. Call from the client's event loop.
    """
    logs.silence_payload_debug_logs()
    if not isinstance(client.data_converter.payload_codec, EncryptionCodec):
        raise ValueError("the worker's client needs the encryption codec (infra.temporal.connect)")
    quiet_sdk_tracebacks()
    config = ConfigCache(store, settings.config_refresh_seconds)
    backends = build_backends(
        client, store, settings, backend, tracer=tracing.tracer(tracer_provider)
    )
    validation = ValidationActivities(config, id_hash_key(settings))
    debounce = DebounceActivities()
    patients = PatientActivities(backends)
    care_flows = CareFlowActivities(backends)
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
        workflow_runner=workflow_runner(settings),
        max_concurrent_workflow_tasks=settings.careflow_worker_workflow_task_slots,
        # Two pollers (the sticky queue and the task queue) keep up with few slots.
        max_concurrent_workflow_task_polls=2,
    )


async def main() -> None:
    settings = get_settings()
    if settings.careflow_worker_nice:
        # Before any thread starts (the SDK's runtime, the executors): threads inherit it.
        os.nice(settings.careflow_worker_nice)
    logs.configure(log_format=settings.careflow_log_format)
    store = Store(settings.sqlalchemy_url)
    store.migrate()
    provider = tracing.tracer_provider_from_environment("careflow-worker")
    tracing.instrument_httpx(provider)
    client = await temporal.connect(settings, runtime=runtime.worker_runtime(settings))
    try:
        with (
            ThreadPoolExecutor(max_workers=16) as executor,
            ThreadPoolExecutor(max_workers=8) as patient_executor,
        ):
            workers = [build_worker(client, store, settings, executor, tracer_provider=provider)]
            log = logging.getLogger("careflow.worker")
            log.info("worker polling task queue %s", settings.careflow_task_queue)
            if "awell" not in settings.unconfigured_backends:  # only remote backends need it
                workers.append(build_patient_worker(client, store, settings, patient_executor))
                log.info("patient resolution served on task queue %s", settings.patient_task_queue)
            await asyncio.gather(*(w.run() for w in workers))
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
