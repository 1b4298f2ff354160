"""The example care-flow worker: ``python -m examples.care_flow_worker`` (``make run`` starts it
unless ``CAREFLOW_EXAMPLE_WORKER=false``). Polls ``example-care-flows`` for ``ExampleCareFlow``
with the service's own client settings and data converter, so it decodes what the temporal
backend sends."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio.client import Client
from temporalio.worker import Worker

from careflow import logs
from careflow.settings import get_settings
from examples.care_flow import TASK_QUEUE, ExampleCareFlow
from infra import temporal


def build_example_worker(client: Client, task_queue: str = TASK_QUEUE) -> Worker:
    """A worker serving ``ExampleCareFlow`` on ``task_queue``."""
    return Worker(client, task_queue=task_queue, workflows=[ExampleCareFlow])


async def main() -> None:
    logs.configure()
    client = await temporal.connect(get_settings())
    logging.getLogger("careflow.example").info("example care-flow worker on %s", TASK_QUEUE)
    await build_example_worker(client).run()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
