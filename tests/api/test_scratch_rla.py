from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client

from backends.builtin import BuiltinBackend
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api
from tests.factories import open_webhook
from worker import build_worker


class SlowStartBackend(BuiltinBackend):
    def __init__(self, store: Store, delay: float, slow: int) -> None:
        super().__init__(store)
        self.calls = 0
        self.delay = delay
        self.slow = slow
        self.lock = threading.Lock()

    def start_care_flow(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n <= self.slow:
            time.sleep(self.delay)
        return super().start_care_flow(*args, **kwargs)


@pytest.mark.parametrize("slots,nslow", [(2, 0), (2, 2)])
async def test_stall(
    api: Api, temporal_client: Client, store: Store, settings: Settings, slots: int, nslow: int
) -> None:
    settings = settings.model_copy(update={"careflow_worker_workflow_task_slots": slots})
    hook_id = await open_webhook(api)
    backend = SlowStartBackend(store, 4.5, nslow)
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with build_worker(temporal_client, store, settings, executor, backend):
            loop = asyncio.get_running_loop()
            slow = [(await api.http.post(f"/hooks/{hook_id}", json={"a": i})).json()["request_id"] for i in range(nslow)]
            await asyncio.sleep(0.5)
            t0 = loop.time()
            fast = [(await api.http.post(f"/hooks/{hook_id}", json={"b": i})).json()["request_id"] for i in range(5)]
            for r in fast:
                await api.wait_status(r, {"SUCCESS", "FAILED"}, timeout=40)
                print("   fast", round(loop.time() - t0, 2))
            h = temporal_client.get_workflow_handle(fast[-1])
            async for e in h.fetch_history_events():
                print("     ev", e.event_id, e.event_type, e.event_time.ToDatetime().time())
            print("SLOTS", slots, "fast settled after", round(loop.time() - t0, 2))
            for r in slow:
                d = await api.wait_status(r, {"SUCCESS", "FAILED"}, timeout=40)
                print("  slow", d["status"], [t["message"] for t in d["timeline"]][-1])
