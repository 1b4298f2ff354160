"""``python -m examples.care_flow_worker`` (what ``make run`` starts) serves ``ExampleCareFlow``
on ``example-care-flows``; the workflow logs data point ids, never values, and ends on the
``complete`` signal."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

from temporalio.client import Client

from careflow.messages import CareFlowWorkflowInput
from careflow.settings import Settings
from cli import example_worker_command
from examples.care_flow import COMPLETE_SIGNAL, TASK_QUEUE, WORKFLOW_TYPE
from tests.factories import ROOT


async def test_example_worker_runs_the_example_care_flow(
    temporal_client: Client, settings: Settings
) -> None:
    assert example_worker_command()[1:] == ["-m", "examples.care_flow_worker"]
    env = {  # the service's settings: its codec key ring decodes what the backend sends
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "CAREFLOW_DATA_DIR": str(settings.careflow_data_dir),
        "CAREFLOW_ENCRYPTION_KEYS": settings.careflow_encryption_keys or "",
    }
    process = await asyncio.create_subprocess_exec(
        *example_worker_command(), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        handle = await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            CareFlowWorkflowInput(
                request_id="req_example",
                care_flow_definition_id="intake",
                patient_id="pat_1",
                data_points={"mrn": "SECRET-VALUE-12345", "deceased": False},
            ),
            id=f"care-flow-example-{uuid.uuid4().hex}",
            task_queue=TASK_QUEUE,
        )
        assert await handle.query("data_point_ids", result_type=list[str]) == ["deceased", "mrn"]
        await handle.signal(COMPLETE_SIGNAL)
        result = await asyncio.wait_for(handle.result(), timeout=30)
        assert result["completed_by"] == "signal"
    finally:
        process.send_signal(signal.SIGINT)
        # communicate() drains stderr while waiting: a worker that logged more than a pipe
        # buffer (a loaded machine's poll warnings) would otherwise block on write and never exit.
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    logged = stderr.decode()
    assert "got 2 data points: deceased, mrn" in logged
    assert "SECRET-VALUE-12345" not in logged
