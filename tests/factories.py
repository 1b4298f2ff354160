"""Shared builders: configuration (over HTTP, or straight on the store), sample payloads and
workflow starts. Fixtures (dev server, store, worker, API) live in ``tests/conftest.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from careflow import request_ids
from careflow.messages import RequestState, WebhookRequestInput
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    IdentifierSystem,
    RequestError,
    RequestStatus,
    Webhook,
)
from careflow.settings import Settings
from infra import temporal
from persistence.store import Store, new_webhook_id
from tests.conftest import ADMIN_TOKEN, Api, RunningWorker

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
WALKTHROUGH = ROOT / "examples" / "fhir-walkthrough.json"

JSON = {"Content-Type": "application/json"}
TERMINAL = {"SUCCESS", "REJECTED", "FAILED", "TEST"}
FHIR_SAMPLE = "fhir-r4-patient-example"
FHIR_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"
MRN_SYSTEM = "https://example-hospital.org/mrn"
# Where a webhook reads the patient profile in a payload shaped like ``EHR_PATIENT``.
EHR_PROFILE = {
    "first_name": "$.patient.given",
    "last_name": "$.patient.family",
    "birth_date": "$.patient.born",
    "phone": "$.patient.phone",
    "sex": "$.patient.sex",
    "preferred_language": "$.patient.lang",
    "email": "$.patient.email",
}


# --- payloads -------------------------------------------------------------------------------------


def sample_payload(name: str = FHIR_SAMPLE) -> bytes:
    """A sample payload from ``tests/fixtures/samples/payloads``, byte for byte."""
    return (SAMPLES / "payloads" / f"{name}.json").read_bytes()


def fhir_patient(*, without: str | None = None) -> dict[str, Any]:
    """The FHIR Patient sample, parsed; ``without`` names a top-level field to leave out."""
    payload: dict[str, Any] = json.loads(sample_payload(FHIR_SAMPLE))
    if without is not None:
        del payload[without]
    return payload


async def post_sample(
    api: Api,
    hook_id: str,
    name: str = FHIR_SAMPLE,
    *,
    test: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a sample payload to a webhook's URL (or its test link)."""
    url = f"/hooks/{hook_id}/test" if test else f"/hooks/{hook_id}"
    return await api.http.post(
        url, content=sample_payload(name), headers={**JSON, **(headers or {})}
    )


# --- configuration over HTTP ----------------------------------------------------------------------


async def add_identifier_system(api: Api, name: str, system: str, description: str = "") -> None:
    """Create an identifier system (already there is fine)."""
    answer = await api.admin(
        "POST",
        "/v1/identifier-systems",
        json={"name": name, "system": system, "description": description},
    )
    assert answer.status_code in (201, 409), answer.text


async def save_definition(
    api: Api,
    definition_id: str,
    points: list[dict[str, Any]],
    *,
    title: str | None = None,
    published: bool = True,
    replace: bool = False,
) -> None:
    """Create (already there is fine) or, with ``replace``, replace a care flow definition."""
    body = {
        "title": title or definition_id,
        "published": published,
        "data_point_definitions": points,
    }
    if replace:
        answer = await api.admin("PUT", f"/v1/care-flow-definitions/{definition_id}", json=body)
        assert answer.status_code == 200, answer.text
    else:
        answer = await api.admin(
            "POST", "/v1/care-flow-definitions", json={"id": definition_id, **body}
        )
        assert answer.status_code in (201, 409), answer.text


async def add_webhook(api: Api, *, enable: bool = True, **fields: Any) -> dict[str, Any]:
    """Create a webhook from ``fields`` and, with ``enable``, enable it; its public view."""
    answer = await api.admin("POST", "/v1/webhooks", json=fields)
    assert answer.status_code == 201, answer.text
    hook: dict[str, Any] = answer.json()
    if enable:
        answer = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
        assert answer.status_code == 200, answer.text
        hook = answer.json()
    return hook


def _walkthrough() -> dict[str, Any]:
    walkthrough: dict[str, Any] = json.loads(WALKTHROUGH.read_text())
    return walkthrough


FHIR_POINTS: list[dict[str, Any]] = _walkthrough()["care_flow_definition"]["data_point_definitions"]


async def configure_fhir_webhook(api: Api, *, enable: bool = True, **overrides: Any) -> dict:
    """The README walkthrough's configuration for the FHIR Patient sample."""
    walkthrough = _walkthrough()
    system = walkthrough["identifier_system"]
    await add_identifier_system(api, system["name"], system["system"], system["description"])
    definition = walkthrough["care_flow_definition"]
    await save_definition(
        api,
        definition["id"],
        definition["data_point_definitions"],
        title=definition["title"],
        published=definition["published"],
    )
    return await add_webhook(api, enable=enable, **{**walkthrough["webhook"], **overrides})


async def failed_request(api: Api, worker: RunningWorker, hook_id: str) -> str:
    """A request of the FHIR webhook that FAILED for good: accepted while no worker ran, then
    its care flow definition was unpublished with ``?force=true`` (which disables the webhook);
    ``start_care_flow`` refused it. ``republish`` undoes the cause."""
    await worker.stop()
    accepted = await post_sample(api, hook_id)
    assert accepted.status_code == 202, accepted.text
    await unpublish(api, "intake", "Patient intake", FHIR_POINTS)
    await worker.start()
    request_id = str(accepted.json()["request_id"])
    await api.wait_status(request_id, {"FAILED"})
    return request_id


async def unpublish(api: Api, definition_id: str, title: str, points: list[Any]) -> None:
    """Unpublish a care flow definition with ``?force=true`` (which disables its webhooks)."""
    unpublished = await api.admin(
        "PUT",
        f"/v1/care-flow-definitions/{definition_id}?force=true",
        json={"title": title, "published": False, "data_point_definitions": points},
    )
    assert unpublished.status_code == 200, unpublished.text


async def post_with_unknown_system(api: Api, hook_id: str) -> httpx.Response:
    """Post the FHIR sample with a first identifier of a system nobody registered: REJECTED
    ``unknown_identifier_system`` (422), retryable once that system is added."""
    payload = fhir_patient()
    other = {**payload["identifier"][0], "system": "https://other.example/mrn", "value": "X1"}
    payload["identifier"].insert(0, other)
    rejected = await api.http.post(f"/hooks/{hook_id}", json=payload)
    assert rejected.status_code == 422, rejected.text
    return rejected


async def republish(api: Api, hook_id: str) -> None:
    """Publish the FHIR care flow definition and enable its webhook again."""
    await save_definition(api, "intake", FHIR_POINTS, title="Patient intake", replace=True)
    enabled = await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")
    assert enabled.status_code == 200, enabled.text


async def open_webhook(api: Api, **fields: Any) -> str:
    """An enabled webhook whose care flow needs no data point: any JSON body is SCHEDULED."""
    points = [{"id": "anything", "value_type": "json", "optional": True}]
    await save_definition(api, "open", points, title="Open")
    hook = await add_webhook(
        api,
        name="open",
        care_flow_definition_id="open",
        data_point_mappings=[{"data_point_definition_id": "anything", "path": "$.a"}],
        **fields,
    )
    return str(hook["id"])


EHR_PATIENT = {
    "mrn": 70011,
    "given": "Zelda",
    "family": "Quartermaine",
    "born": "1980-02-29",
    "phone": "(415) 555-2671",
    "sex": "Female",
    "lang": "NL",
    "email": "zq@example.org",
}


async def ehr_webhook(api: Api) -> str:
    """Identifier system ``mrn`` (``MRN_SYSTEM``), definition ``visit`` (one data point,
    ``reason``) and an enabled webhook reading the patient's MRN and profile from
    ``$.patient`` (shaped like ``EHR_PATIENT``)."""
    await add_identifier_system(api, "mrn", MRN_SYSTEM)
    await save_definition(api, "visit", [{"id": "reason", "value_type": "string"}], title="Visit")
    hook = await add_webhook(
        api,
        name="EHR",
        care_flow_definition_id="visit",
        data_point_mappings=[{"data_point_definition_id": "reason", "path": "$.reason"}],
        patient_identifier={"system": MRN_SYSTEM, "value_path": "$.patient.mrn"},
        patient_profile=EHR_PROFILE,
    )
    return str(hook["id"])


# --- the web pages --------------------------------------------------------------------------------


async def ui_sign_in(api: Api) -> str:
    """Sign in to ``/ui`` with the admin token (the session cookie stays on ``api.http``);
    returns the session's CSRF token, as the pages' forms carry it."""
    login = await api.http.post("/ui/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert login.status_code == 303, login.text
    api.http.cookies.update(login.cookies)
    page = await api.http.get("/ui/settings")
    return page.text.split('name="csrf" value="')[1].split('"')[0]


# --- configuration on the store -------------------------------------------------------------------


def store_definition(store: Store, *, published: bool = True) -> CareFlowDefinition:
    """Care flow definition ``intake`` with one required number data point, ``age``."""
    return store.configuration.create_care_flow_definition(
        CareFlowDefinition(
            id="intake",
            title="Intake",
            published=published,
            data_point_definitions=[DataPointDefinition(id="age", value_type="number")],
        )
    )


def store_webhook(store: Store, *, published: bool = True, enabled: bool = True) -> Webhook:
    """Identifier system ``mrn`` (``MRN_SYSTEM``), ``intake`` and a webhook mapping ``$.age``;
    the patient identifier comes from the body's ``patient_identifier``."""
    store.configuration.create_identifier_system(IdentifierSystem(name="mrn", system=MRN_SYSTEM))
    store_definition(store, published=published)
    now = datetime.now(UTC)
    return store.configuration.insert_webhook(
        Webhook(
            id=new_webhook_id(),
            name="Test hook",
            care_flow_definition_id="intake",
            data_point_mappings=[DataPointMapping(data_point_definition_id="age", path="$.age")],
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
    )


# --- workflow starts ------------------------------------------------------------------------------


async def start_request(
    client: Client,
    task_queue: str,
    hook: Webhook,
    body: Any,
    *,
    handler_status: RequestStatus = RequestStatus.SCHEDULED,
    handler_errors: list[RequestError] | None = None,
    handler_data_points: dict[str, Any] | None = None,
    door_rejected: bool = False,
    is_test: bool = False,
    memo_on_completion: bool = False,
    local_first: bool = True,
) -> WorkflowHandle[Any, RequestState]:
    """Start ``WebhookRequestWorkflow`` directly, as the ingest handler would; ``body`` None
    carries no body (a payload over the size limit); ``memo_on_completion`` True starts the
    shape before issue 19's second part (memo at every settle), ``local_first`` False the
    shape before its third part (``resolve_patient`` / ``start_care_flow`` as activities only)."""
    request_id = request_ids.new_request_id(test=is_test)
    return await client.start_workflow(
        temporal.WORKFLOW_TYPE,
        WebhookRequestInput(
            request_id=request_id,
            webhook_id=hook.id,
            webhook_name=hook.name,
            care_flow_definition_id=hook.care_flow_definition_id,
            received_at=datetime.now(UTC),
            body=None if body is None else json.dumps(body).encode(),
            is_test=is_test,
            handler_status=handler_status,
            handler_errors=handler_errors or [],
            handler_data_points=handler_data_points or {},
            door_rejected=door_rejected,
            activity_max_attempts=2,
            activity_max_seconds=10,
            memo_on_completion=memo_on_completion,
            local_first=local_first,
        ),
        id=request_id,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(temporal.SA_WEBHOOK_ID, hook.id),
                SearchAttributePair(temporal.SA_REQUEST_STATUS, "RECEIVED"),
                SearchAttributePair(temporal.SA_IS_TEST, is_test),
            ]
        ),
        result_type=RequestState,
    )


@contextmanager
def unreachable_database(store: Store, settings: Settings) -> Iterator[None]:
    """The SQLite file's directory is gone (an unmounted volume, say) until the block ends."""
    data_dir = settings.careflow_data_dir
    store.dispose()
    away = data_dir.rename(data_dir.with_name("away"))
    try:
        yield
    finally:
        store.dispose()
        away.rename(data_dir)


async def activity_events(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """The run's activities in history order: ``("activity", type)`` for each one scheduled,
    ``("local", type)`` for each local activity's marker."""
    from api import request_history

    found = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            found.append(
                ("activity", event.activity_task_scheduled_event_attributes.activity_type.name)
            )
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            found.append(("local", str(request_history.local_activity_type(event))))
    return found
