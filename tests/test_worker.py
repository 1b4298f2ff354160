"""``worker.py``: ``build_worker`` wires the workflows and the activities to the task queue;
``python worker.py`` runs one from the environment's settings and stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client

from careflow.messages import RequestState
from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store
from tests.factories import ROOT, start_request, store_webhook
from worker import build_worker
from workflows.debounce import DebounceWindowWorkflow
from workflows.request import WebhookRequestWorkflow


async def test_build_worker_serves_the_workflows_and_the_activities(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    payload_logger = logging.getLogger("temporalio.activity")
    payload_logger.setLevel(logging.DEBUG)
    with ThreadPoolExecutor(max_workers=3) as executor:
        config = build_worker(temporal_client, store, settings, executor).config()
    assert config["task_queue"] == settings.careflow_task_queue
    assert config["workflows"] == [WebhookRequestWorkflow, DebounceWindowWorkflow]
    names = {activity.__temporal_activity_definition.name for activity in config["activities"]}
    assert names == {
        temporal.VALIDATE_REQUEST,
        temporal.RESOLVE_PATIENT,
        temporal.START_CARE_FLOW,
        temporal.FIND_ACTIVE_CARE_FLOW,
        temporal.CLAIM_DEBOUNCE_WINDOW,
    }
    assert config["activity_executor"] is executor
    assert config["max_concurrent_activities"] == 3  # one activity per executor thread
    assert payload_logger.level == logging.INFO  # the SDK's payload DEBUG records are clamped


async def test_python_worker_py_processes_requests_until_interrupted(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "CAREFLOW_TASK_QUEUE": settings.careflow_task_queue,
        "CAREFLOW_DATA_DIR": str(settings.careflow_data_dir),
        "CAREFLOW_ADMIN_TOKEN": "unused",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        cwd=settings.careflow_data_dir.parent,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    logged: list[str] = []
    polling = asyncio.Event()

    async def read_log(stream: asyncio.StreamReader) -> None:
        async for line in stream:  # read it all, so the worker never blocks on a full pipe
            logged.append(line.decode())
            if f"worker polling task queue {settings.careflow_task_queue}" in logged[-1]:
                polling.set()

    reader = asyncio.create_task(read_log(process.stderr))
    try:
        await asyncio.wait_for(polling.wait(), timeout=30)
        hook = store_webhook(store)  # the worker's database: the same data dir
        handle = await start_request(
            temporal_client, settings.careflow_task_queue, hook, {"age": 30}
        )
        state: RequestState = await asyncio.wait_for(handle.result(), timeout=30)
        assert state.status == RequestStatus.SUCCESS
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(process.wait(), timeout=30)
        await reader
    assert returncode == 0, "".join(logged)
