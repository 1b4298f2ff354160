"""The worker: wires the workflow and the activities to the task queue. ``python worker.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.care_flows import CareFlowActivities
from activities.patients import PatientActivities
from activities.validation import ValidationActivities
from backends.base import CareFlowBackend
from backends.builtin import BuiltinBackend
from backends.loop import LoopRunner
from backends.registry import BackendRegistry
from backends.temporal_workflow import TemporalWorkflowBackend
from careflow import logs
from careflow.settings import Settings, get_settings
from infra import temporal
from persistence.config_cache import ConfigCache
from persistence.store import Store
from workflows.request import WebhookRequestWorkflow


def build_backends(
    client: Client, store: Store, settings: Settings, builtin: CareFlowBackend | None = None
) -> BackendRegistry:
    """The care-flow backends this worker can start in, chosen per definition.

    Call from the event loop the client runs on: the temporal backend runs the client's
    coroutines there from the activity threads.
    """
    runner = LoopRunner(asyncio.get_running_loop())
    others: dict[str, CareFlowBackend] = {
        "temporal": TemporalWorkflowBackend(
            store, client, runner, pickup_seconds=settings.care_flow_pickup_seconds
        )
    }
    return BackendRegistry(store, builtin or BuiltinBackend(store), others)


def build_worker(
    client: Client,
    store: Store,
    settings: Settings,
    executor: ThreadPoolExecutor,
    backend: CareFlowBackend | None = None,
) -> Worker:
    """A worker for ``settings.careflow_task_queue`` with the three activities on ``store``.

    Activities are synchronous (SQLAlchemy) and run on ``executor``; ``backend`` replaces the
    built-in one on ``store`` (fault-injection tests). Call from the client's event loop.
    """
    logs.silence_payload_debug_logs()
    config = ConfigCache(store, settings.config_refresh_seconds)
    backends = build_backends(client, store, settings, backend)
    validation = ValidationActivities(config)
    patients = PatientActivities(backends)
    care_flows = CareFlowActivities(backends)
    return Worker(
        client,
        task_queue=settings.careflow_task_queue,
        workflows=[WebhookRequestWorkflow],
        activities=[
            validation.validate_request,
            patients.resolve_patient,
            care_flows.start_care_flow,
        ],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


async def main() -> None:
    logs.configure()
    settings = get_settings()
    store = Store(settings.sqlalchemy_url)
    store.migrate()
    client = await temporal.connect(settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, store, settings, executor)
        logging.getLogger("careflow.worker").info(
            "worker polling task queue %s", settings.careflow_task_queue
        )
        await worker.run()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
