"""``api/request_history.py``: what a run's history and description hold — its input, its
``validate_request`` result, its first workflow task — and where the shown mapping and payload
come from."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from api import request_history as history
from careflow.messages import RequestState, TimelineEntry, ValidationResult, WebhookRequestInput
from careflow.models import Identifier, RequestError, RequestStatus
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import RunningWorker
from tests.factories import start_request, store_webhook


def _input(
    body: bytes | None, media_type: str = "application/json", **fields: Any
) -> WebhookRequestInput:
    return WebhookRequestInput(
        request_id="req_1",
        webhook_id="wh_1",
        care_flow_definition_id="intake",
        received_at=datetime.now(UTC),
        body=body,
        media_type=media_type,
        handler_status=RequestStatus.REJECTED,
        **fields,
    )


def test_logged_payload_is_parsed_else_the_text_as_received_else_none() -> None:
    assert history.logged_payload(None) is None
    assert history.logged_payload(_input(None)) is None  # over the size limit: omitted
    assert history.logged_payload(_input(b'{"a": [1]}')) == {"a": [1]}
    form = _input(b"a=1&a=2&b=x", "application/x-www-form-urlencoded")
    assert history.logged_payload(form) == {"a": ["1", "2"], "b": "x"}
    assert history.logged_payload(_input(b"{nope")) == "{nope"
    assert history.logged_payload(_input(b"\xff{")) == "\ufffd{"


def test_the_mapping_shown_is_the_validation_else_the_handlers_else_the_live_one() -> None:
    state = RequestState(
        status=RequestStatus.REJECTED,
        data_points={"live": 1},
        patient_identifier=Identifier(system="urn:s", value="live"),
    )
    validation = ValidationResult(
        verdict=RequestStatus.SCHEDULED,
        data_points={"validated": 1},
        patient_identifier=Identifier(system="urn:s", value="validated"),
    )
    carried = _input(
        b"{}",
        handler_data_points={"handler": 1},
        handler_patient_identifier=Identifier(system="urn:s", value="handler"),
    )
    first = history.known_state(state, carried, validation, first_run=True)
    assert (first.data_points, first.patient_identifier.value) == ({"validated": 1}, "validated")
    second = history.known_state(state, carried, None, first_run=True)
    assert (second.data_points, second.patient_identifier.value) == ({"handler": 1}, "handler")
    for request in (_input(b"{}"), None):
        third = history.known_state(state, request, None, first_run=True)
        assert (third.data_points, third.patient_identifier.value) == ({"live": 1}, "live")


def test_a_run_no_worker_ran_yet_shows_the_handlers_verdict_and_errors() -> None:
    errors = [RequestError(code="webhook_disabled", message="m")]
    rejected = _input(b"{}", handler_errors=errors)
    received = RequestState(status=RequestStatus.RECEIVED)  # no memo yet: empty timeline
    shown = history.known_state(received, rejected, None, first_run=True)
    assert (shown.verdict, shown.errors) == (RequestStatus.REJECTED, errors)
    accepted = rejected.model_copy(update={"handler_status": RequestStatus.SCHEDULED})
    assert history.known_state(received, accepted, None, first_run=True).verdict is None
    # Once the workflow has written its state, that state's errors count.
    ran = received.model_copy(
        update={"timeline": [TimelineEntry(status=RequestStatus.REJECTED, at=datetime.now(UTC))]}
    )
    assert history.known_state(ran, rejected, None, first_run=True).errors == []
    # A reset run (a retry) re-decides: the first run's verdict is not shown for it.
    reset = history.known_state(received, rejected, None, first_run=False)
    assert (reset.verdict, reset.errors) == (None, [])


async def test_a_finished_run_holds_its_input_and_validation(
    temporal_client: Client, settings: Settings, store: Store, worker: RunningWorker
) -> None:
    hook = store_webhook(store)
    handle = await start_request(temporal_client, settings.careflow_task_queue, hook, {"age": "42"})
    assert (await handle.result()).status == RequestStatus.SUCCESS
    request, validation = await history.read(temporal_client, handle)
    assert request is not None and request.request_id == handle.id
    assert json.loads(request.body or b"") == {"age": "42"}
    assert validation is not None
    assert (validation.verdict, validation.data_points) == (RequestStatus.SCHEDULED, {"age": 42})
    completed = [
        event.event_id
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert completed
    assert await history.first_workflow_task(handle) == completed[0]
    assert history.pending_activities(await handle.describe()) == []


async def test_a_run_no_worker_picked_up_has_only_its_input(
    temporal_client: Client, store: Store
) -> None:
    hook = store_webhook(store)
    idle_queue = f"idle-{uuid.uuid4().hex[:12]}"
    handle = await start_request(temporal_client, idle_queue, hook, {"age": 1})
    try:
        request, validation = await history.read(temporal_client, handle)
        assert request is not None and request.webhook_id == hook.id
        assert validation is None
        assert await history.first_workflow_task(handle) is None
    finally:
        await handle.terminate()
