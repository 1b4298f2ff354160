"""``worker.py``: ``build_worker`` wires the workflows and the activities to the task queue;
``python worker.py`` runs one from the environment's settings and stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
from temporalio.client import Client

from careflow.messages import RequestState
from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store
from tests.conftest import free_port
from tests.factories import ROOT, start_request, store_webhook
from worker import build_worker
from workflows.alerts import AlertWorkflow
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
    assert config["workflows"] == [WebhookRequestWorkflow, DebounceWindowWorkflow, AlertWorkflow]
    names = {activity.__temporal_activity_definition.name for activity in config["activities"]}
    assert names == {
        temporal.VALIDATE_REQUEST,
        temporal.RESOLVE_PATIENT,
        temporal.START_CARE_FLOW,
        temporal.FIND_ACTIVE_CARE_FLOW,
        temporal.CLAIM_DEBOUNCE_WINDOW,
        temporal.SEND_ALERT,
    }
    assert config["activity_executor"] is executor
    assert config["max_concurrent_activities"] == 3  # one activity per executor thread
    assert payload_logger.level == logging.INFO  # the SDK's payload DEBUG records are clamped


async def test_python_worker_py_processes_requests_until_interrupted(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    metrics_port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "CAREFLOW_TASK_QUEUE": settings.careflow_task_queue,
        "CAREFLOW_DATA_DIR": str(settings.careflow_data_dir),
        "CAREFLOW_ADMIN_TOKEN": "unused",
        "CAREFLOW_ENCRYPTION_KEYS": settings.careflow_encryption_keys or "",  # the tests' ring
        "CAREFLOW_WORKER_METRICS_PORT": str(metrics_port),
    }
    # The worker's log goes to a file, not a pipe: a pipe nobody drains fast enough would block
    # the worker on a write and make it deaf to SIGINT.
    log_path = settings.careflow_data_dir.parent / "worker.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            cwd=settings.careflow_data_dir.parent,
            env=env,
            stderr=log_file,
            # Started with SIGINT ignored (a disposition children inherit): it must stop anyway.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )

    def logged() -> str:
        return log_path.read_text(errors="replace")

    try:
        ready = f"worker polling task queue {settings.careflow_task_queue}"
        deadline = asyncio.get_running_loop().time() + 30
        while ready not in logged():
            assert process.returncode is None, logged()
            assert asyncio.get_running_loop().time() < deadline, logged()
            await asyncio.sleep(0.1)
        hook = store_webhook(store)  # the worker's database: the same data dir
        handle = await start_request(
            temporal_client, settings.careflow_task_queue, hook, {"age": 30}
        )
        state: RequestState = await asyncio.wait_for(handle.result(), timeout=30)
        assert state.status == RequestStatus.SUCCESS
        # One endpoint: the Temporal SDK's metrics and ours (terminal status, backend calls).
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert "temporal_workflow_task_schedule_to_start_latency" in text
        # The request ran in one workflow task: its activities ran as local activities.
        assert "temporal_local_activity_execution_latency" in text
        completed = [
            line
            for line in text.splitlines()
            if line.startswith("careflow_requests_completed_total{")
            and f'webhook_id="{hook.id}"' in line
        ]
        assert len(completed) == 1 and 'status="SUCCESS"' in completed[0], completed
        assert completed[0].endswith(" 1")
        assert 'care_flow_definition_id="' in completed[0]
        backend_calls = [
            line
            for line in text.splitlines()
            if line.startswith("careflow_backend_call_duration_seconds_count{")
        ]
        assert any('backend="builtin"' in line for line in backend_calls), backend_calls
        operations = {line.split('operation="')[1].split('"')[0] for line in backend_calls}
        assert {"start_care_flow", "create_patient"} <= operations, operations
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            returncode = await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(
                "the worker did not stop within 60 s of SIGINT:\n" + logged()[-4000:]
            ) from None
    assert returncode == 0, logged()
