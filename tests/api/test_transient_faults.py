"""Transient faults retry with backoff and the request detail shows the attempts (issue 5).

A scenario across the worker, a failing backend, the workflow's retry policy and the request
log (its pending activities), so it has no single module to mirror."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.api.enums.v1 import ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from backends.base import BackendUnavailableError
from backends.builtin import BuiltinBackend
from careflow.answers import Patient
from careflow.models import Identifier
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, free_port, serve_api
from tests.factories import open_webhook
from worker import build_worker
from workflows.activity_calls import LOCAL_ATTEMPT_TIMEOUT


class FlakyBackend(BuiltinBackend):
    """The built-in backend, but patient creation fails twice (a locked database, say)."""

    def __init__(self, store: Store, failures: int) -> None:
        super().__init__(store)
        self.failures_left = failures

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise BackendUnavailableError("database is locked")
        return super().create_patient(identifier, profile, idempotency_key)


async def test_backend_failing_twice_then_success(
    api: Api, temporal_client: Client, store: Store, settings: Settings
) -> None:
    hook_id = await open_webhook(api)
    backend = FlakyBackend(store, failures=2)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(temporal_client, store, settings, executor, backend):
            answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
            assert answer.status_code == 202
            request_id = answer.json()["request_id"]
            pending_seen = None
            for _ in range(100):
                detail = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
                if detail["pending_activities"] and detail["pending_activities"][0]["attempt"] > 1:
                    pending_seen = detail
                    break
                await asyncio.sleep(0.1)
            assert pending_seen is not None
            activity = pending_seen["pending_activities"][0]
            assert activity["activity_type"] == "resolve_patient"
            assert activity["last_failure"] == "backend_unavailable"
            # Attempt 1 was the local one: the scheduled activity's attempts count it.
            assert activity["maximum_attempts"] == settings.activity_max_attempts
            assert activity["last_attempt_at"] and activity["next_attempt_at"]
            assert pending_seen["status"] == "PROCESSING"
            assert (
                "pending; last failure: backend_unavailable"
                in (pending_seen["timeline"][-1]["message"])
            )
            done = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=30)
    assert done["status"] == "SUCCESS"
    assert done["pending_activities"] == []
    messages = [t["message"] or "" for t in done["timeline"]]
    assert any("resolve_patient succeeded on attempt 3" in m for m in messages)


async def test_retries_run_out_the_request_fails(
    api: Api, temporal_client: Client, store: Store, settings: Settings
) -> None:
    hook_id = await open_webhook(api)
    bounded = settings.model_copy(
        update={"activity_max_attempts": 2, "careflow_api_port": free_port()}
    )
    async with serve_api(bounded) as bounded_api:
        backend = FlakyBackend(store, failures=10)
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(temporal_client, store, bounded, executor, backend):
                answer = await bounded_api.http.post(f"/hooks/{hook_id}", json={"a": 1})
                done = await bounded_api.wait_status(
                    answer.json()["request_id"], {"SUCCESS", "FAILED"}, timeout=30
                )
    assert done["status"] == "FAILED"
    assert done["errors"][0]["code"] == "backend_unavailable"


class FlakyStartBackend(BuiltinBackend):
    """The built-in backend, but the first care flow start fails (its local attempt), so the
    request runs over two workflow tasks: the first resolves the patient and schedules
    ``start_care_flow`` as an activity, the second completes it."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.failures_left = 1

    def start_care_flow(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise BackendUnavailableError("database is locked")
        return super().start_care_flow(*args, **kwargs)


async def test_ui_style_reset_after_partial_success_keeps_one_care_flow(
    api: Api, temporal_client: Client, store: Store, settings: Settings
) -> None:
    hook_id = await open_webhook(api)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(
            temporal_client, store, settings, executor, FlakyStartBackend(store)
        ):
            answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
            request_id = answer.json()["request_id"]
            done = await api.wait_status(request_id, {"SUCCESS"})
            assert any(
                "start_care_flow succeeded on attempt 2" in (t["message"] or "")
                for t in done["timeline"]
            )
            await _reset_after_first_task(temporal_client, api, request_id, done)
    assert store.patients.count_care_flows() == 1


async def _reset_after_first_task(
    temporal_client: Client, api: Api, request_id: str, done: dict[str, Any]
) -> None:
    """Reset to the task that resolved the patient (a partial replay), as the UI can, and
    wait for the new run to succeed with the same care flow."""
    handle = temporal_client.get_workflow_handle(request_id)
    events = [e async for e in handle.fetch_history_events()]
    completed_tasks = [e.event_id for e in events if e.event_type == 7]  # WORKFLOW_TASK_COMPLETED
    assert len(completed_tasks) == 2
    await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution={"workflow_id": request_id, "run_id": done["temporal"]["run_id"]},
            reason="operator reset in test",
            workflow_task_finish_event_id=completed_tasks[-2],
            request_id="reset-partial",
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )
    for _ in range(100):
        again = (await api.admin("GET", f"/v1/requests/{request_id}")).json()
        if (
            again["temporal"]["run_id"] != done["temporal"]["run_id"]
            and again["status"] == "SUCCESS"
        ):
            break
        await asyncio.sleep(0.1)
    assert again["status"] == "SUCCESS"
    assert again["care_flow_id"] == done["care_flow_id"]


class LateStartBackend(BuiltinBackend):
    """The built-in backend, but the first care flow start commits and then answers after the
    local attempt's timeout (a slow database): its outcome is lost to the workflow."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.late_left = 1

    def start_care_flow(self, *args: Any, **kwargs: Any) -> Any:
        result = super().start_care_flow(*args, **kwargs)
        if self.late_left > 0:
            self.late_left -= 1
            time.sleep(LOCAL_ATTEMPT_TIMEOUT.total_seconds() + 0.5)
        return result


async def test_a_local_attempt_that_times_out_after_committing_leaves_one_care_flow(
    api: Api, temporal_client: Client, store: Store, settings: Settings
) -> None:
    """The timed-out local ``start_care_flow`` is retried as an activity, which finds the care
    flow the late attempt started; the timeline names the timeout (not run-out retries)."""
    hook_id = await open_webhook(api)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(
            temporal_client, store, settings, executor, LateStartBackend(store)
        ):
            answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
            request_id = answer.json()["request_id"]
            done = await api.wait_status(request_id, {"SUCCESS", "FAILED"}, timeout=40)
    assert done["status"] == "SUCCESS", done
    messages = [t["message"] for t in done["timeline"]]
    assert "start_care_flow: timeout on attempt 1 (local)" in messages, messages
    assert messages[-1] == "care flow already started; start_care_flow succeeded on attempt 2"
    assert store.patients.count_care_flows() == 1
