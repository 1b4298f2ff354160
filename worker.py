"""The worker: wires the workflow and the activities to the task queue. ``python worker.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.care_flows import CareFlowActivities
from activities.debounce import DebounceActivities
from activities.patients import PatientActivities
from activities.validation import ValidationActivities
from backends.base import CareFlowBackend
from backends.builtin import BuiltinBackend
from careflow import logs
from careflow.keyed_ids import id_hash_key
from careflow.settings import Settings, get_settings
from infra import temporal
from persistence.config_cache import ConfigCache
from persistence.store import Store
from workflows.debounce import DebounceWindowWorkflow
from workflows.request import WebhookRequestWorkflow


def build_worker(
    client: Client,
    store: Store,
    settings: Settings,
    executor: ThreadPoolExecutor,
    backend: CareFlowBackend | None = None,
) -> Worker:
    """A worker for ``settings.careflow_task_queue`` with the three activities on ``store``.

    Activities are synchronous (SQLAlchemy) and run on ``executor``; ``backend`` defaults to the
    built-in one on ``store``.
    """
    logs.silence_payload_debug_logs()
    config = ConfigCache(store, settings.config_refresh_seconds)
    backend = backend or BuiltinBackend(store)
    validation = ValidationActivities(config, id_hash_key(settings))
    debounce = DebounceActivities()
    patients = PatientActivities(backend)
    care_flows = CareFlowActivities(backend)
    return Worker(
        client,
        task_queue=settings.careflow_task_queue,
        workflows=[WebhookRequestWorkflow, DebounceWindowWorkflow],
        activities=[
            validation.validate_request,
            patients.resolve_patient,
            care_flows.start_care_flow,
            care_flows.find_active_care_flow,
            debounce.claim_debounce_window,
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
