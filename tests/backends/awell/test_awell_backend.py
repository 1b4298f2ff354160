"""The awell backend end to end: API → workflow → activities → the GraphQL stand-in, on the real
dev server. Every query the backend sends is validated against Awell's schema by the stand-in."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from temporalio.client import Client

from backends.loop import LoopRunner
from careflow.settings import Settings
from persistence.store import Store
from tests.backends.awell.stand_in import API_KEY, AwellStandIn
from tests.conftest import Api, RunningWorker
from tests.factories import (
    EHR_PATIENT,
    EHR_PROFILE,
    JSON,
    MRN_SYSTEM,
    add_identifier_system,
    add_webhook,
)
from worker import build_awell

pytestmark = pytest.mark.usefixtures("patient_worker")

# The data points of the ``visit-follow-up`` definition that every visit payload carries.
VISIT_MAPPINGS = [
    {"data_point_definition_id": "reason", "path": "$.reason"},
    {"data_point_definition_id": "age", "path": "$.age"},
    {"data_point_definition_id": "urgent", "path": "$.urgent"},
    {"data_point_definition_id": "visit_date", "path": "$.date"},
]


async def awell_webhook(api: Api) -> str:
    """Identifier system ``mrn``, the imported ``visit-follow-up`` definition and an enabled
    webhook mapping a visit payload; the webhook id."""
    await add_identifier_system(api, "mrn", MRN_SYSTEM)
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    assert answer.status_code == 200, answer.text
    assert "visit-follow-up" in answer.json()["created"] + answer.json()["updated"]
    hook = await add_webhook(
        api,
        name="Visits",
        care_flow_definition_id="visit-follow-up",
        data_point_mappings=[
            *VISIT_MAPPINGS,
            {"data_point_definition_id": "tags", "path": "$.tags"},
            {"data_point_definition_id": "callback", "path": "$.callback"},
        ],
        patient_identifier={"system": MRN_SYSTEM, "value_path": "$.patient.mrn"},
        patient_profile=EHR_PROFILE,
    )
    return str(hook["id"])


def visit(mrn: Any = 70011, **overrides: Any) -> dict[str, Any]:
    return {
        "reason": "follow-up",
        "age": 42,
        "urgent": "yes",
        "date": "2024-03-01",
        "tags": ["a", "b"],
        "callback": "(415) 555-2671",
        "patient": {**EHR_PATIENT, "mrn": mrn},
        **overrides,
    }


async def send(api: Api, hook_id: str, body: Any) -> dict[str, Any]:
    answer = await api.http.post(f"/hooks/{hook_id}", json=body, headers=JSON)
    assert answer.status_code == 202, answer.text
    return await api.wait_status(answer.json()["request_id"], {"SUCCESS", "FAILED"}, timeout=90)


async def test_request_creates_the_patient_and_starts_the_pathway(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn
) -> None:
    hook_id = await awell_webhook(api)
    detail = await send(api, hook_id, visit())
    assert detail["status"] == "SUCCESS", detail
    assert stand_in.invalid == []
    (patient,) = stand_in.patients.values()
    assert detail["patient_id"] == patient["id"]
    profile = patient["profile"]
    assert profile["identifier"] == [{"system": MRN_SYSTEM, "value": "70011"}]
    assert profile["sex"] == "FEMALE" and profile["phone"] == "+14155552671"
    assert profile["preferred_language"] == "nl" and profile["birth_date"] == "1980-02-29"
    (pathway,) = stand_in.pathways.values()
    assert detail["care_flow_id"] == pathway["id"]
    assert pathway["pathway_definition_id"] == "pd-visit"
    sent = {p["data_point_definition_id"]: p["value"] for p in pathway["data_points"]}
    assert sent == {
        "dp-reason": "follow-up",
        "dp-age": "42",
        "dp-urgent": "true",
        "dp-date": "2024-03-01",
        "dp-tags": '["a","b"]',
        "dp-phone": "+14155552671",
    }
    # A second request for the same identifier matches the patient: no second createPatient.
    again = await send(api, hook_id, visit(reason="second visit"))
    assert again["patient_id"] == patient["id"]
    assert stand_in.calls["createPatient"] == 1
    assert "patient matched" in " ".join(e["message"] or "" for e in again["timeline"])
    # GET /v1/care-flows/{id} answers for an awell pathway started here.
    flow = (await api.admin("GET", f"/v1/care-flows/{pathway['id']}")).json()
    assert flow["backend"] == "awell" and flow["request_id"] == detail["request_id"]


async def test_thirty_concurrent_requests_for_one_new_identifier_create_one_patient(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn
) -> None:
    hook_id = await awell_webhook(api)
    stand_in.create_delay = 0.5
    details = await asyncio.gather(*(send(api, hook_id, visit(mrn=555)) for _ in range(30)))
    assert [d["status"] for d in details] == ["SUCCESS"] * 30, details
    assert stand_in.calls["createPatient"] == 1
    assert len(stand_in.patients) == 1
    assert len({d["patient_id"] for d in details}) == 1
    assert len(stand_in.pathways) == 30
    assert stand_in.invalid == []


@pytest.mark.parametrize("fault", ["5xx", "5xx_after", "slow"])
async def test_a_request_retried_after_a_fault_starts_one_pathway(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn, fault: str
) -> None:
    """``5xx``: Awell did nothing; ``5xx_after`` and ``slow`` (past the 2 s client timeout):
    Awell started the pathway but the answer was lost — the retry adopts it."""
    hook_id = await awell_webhook(api)
    stand_in.fail("startPathway", fault)
    detail = await send(api, hook_id, visit())
    assert detail["status"] == "SUCCESS", detail
    (pathway,) = stand_in.pathways.values()
    assert detail["care_flow_id"] == pathway["id"]
    expected_calls = 2 if fault == "5xx" else 1
    assert stand_in.calls["startPathway"] == expected_calls
    messages = " ".join(e["message"] or "" for e in detail["timeline"])
    # ``5xx``: the retry cannot tell it from ``5xx_after``, so it waits for the unanswered call
    # to settle (attempt 2 answers ``awell_start_unconfirmed``) and starts on attempt 3.
    attempts = ("3",) if fault == "5xx" else ("2", "3")
    assert any(f"start_care_flow succeeded on attempt {n}" in messages for n in attempts)


async def test_rate_limit_is_retried_after_retry_after(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn
) -> None:
    hook_id = await awell_webhook(api)
    stand_in.fail("createPatient", "429")
    stand_in.fail("startPathway", "429", times=2)
    detail = await send(api, hook_id, visit())
    assert detail["status"] == "SUCCESS", detail
    assert stand_in.calls["createPatient"] == 2 and stand_in.calls["startPathway"] == 3
    assert len(stand_in.patients) == 1 and len(stand_in.pathways) == 1


async def test_graphql_error_fails_the_request_backend_refused_without_phi(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook_id = await awell_webhook(api)
    stand_in.fail("startPathway", "graphql_error")
    detail = await send(api, hook_id, visit())
    assert detail["status"] == "FAILED", detail
    (error,) = detail["errors"]
    assert error["code"] == "backend_refused"
    assert error["message"] == "Awell refused startPathway: BAD_USER_INPUT"
    assert stand_in.calls["startPathway"] == 1  # refused for good: not retried
    assert API_KEY not in caplog.text
    assert "Quartermaine" not in caplog.text and "70011" not in str(detail["errors"])
    assert "value rejected" not in str(detail)  # Awell's message text stays out


async def test_awell_refusing_the_patient_fails_the_request(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn
) -> None:
    hook_id = await awell_webhook(api)
    stand_in.fail("createPatient", "graphql_error")
    detail = await send(api, hook_id, visit(mrn=4242))
    assert detail["status"] == "FAILED", detail
    assert detail["errors"][0]["code"] == "backend_refused"
    assert "BAD_USER_INPUT" in detail["errors"][0]["message"]
    # Fixed on Awell's side, a retry of the request creates the patient once.
    retry = await api.admin("POST", f"/v1/requests/{detail['request_id']}/retry")
    assert retry.status_code == 202, retry.text
    detail = await api.wait_status(detail["request_id"], {"SUCCESS", "FAILED"}, timeout=90)
    assert detail["status"] == "SUCCESS", detail
    assert stand_in.calls["createPatient"] == 2 and len(stand_in.patients) == 1


async def test_anonymous_request_gets_one_patient_across_a_retry(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn
) -> None:
    await awell_webhook(api)
    hook = await add_webhook(
        api,
        name="Anonymous visits",
        care_flow_definition_id="visit-follow-up",
        data_point_mappings=VISIT_MAPPINGS,
    )
    stand_in.fail("startPathway", "graphql_error")
    detail = await send(api, hook["id"], visit())
    assert detail["status"] == "FAILED"
    (patient,) = stand_in.patients.values()
    assert patient["profile"]["identifier"] == []
    retry = await api.admin("POST", f"/v1/requests/{detail['request_id']}/retry")
    assert retry.status_code == 202, retry.text
    detail = await api.wait_status(detail["request_id"], {"SUCCESS", "FAILED"}, timeout=90)
    assert detail["status"] == "SUCCESS", detail
    assert detail["patient_id"] == patient["id"]
    assert stand_in.calls["createPatient"] == 1 and len(stand_in.pathways) == 1


async def test_import_creates_then_updates_definitions(api: Api, stand_in: AwellStandIn) -> None:
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    assert answer.json() == {
        "created": ["visit-follow-up"],
        "updated": [],
        "skipped": [],
        "disabled_webhooks": [],
    }
    definition = (await api.admin("GET", "/v1/care-flow-definitions/visit-follow-up")).json()
    assert definition["backend"]["kind"] == "awell"
    assert definition["backend"]["pathway_definition_id"] == "pd-visit"
    assert definition["backend"]["data_point_definition_ids"]["age"] == "dp-age"
    points = {p["id"]: p for p in definition["data_point_definitions"]}
    assert points["age"]["value_type"] == "number" and points["tags"]["optional"] is True
    stand_in.definitions[0]["title"] = "Visit follow-up v2"
    stand_in.add_definition("pd-intake", "Visit follow-up", [])  # same title: id made unique
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    body = answer.json()
    assert body["updated"] == ["visit-follow-up"]
    assert body["created"] == ["visit-follow-up-pd-int"]
    definition = (await api.admin("GET", "/v1/care-flow-definitions/visit-follow-up")).json()
    assert definition["title"] == "Visit follow-up v2"
    assert stand_in.invalid == []
    stand_in.fail("publishedPathwayDefinitions", "5xx")
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert answer.json()["errors"][0]["code"] == "awell_unavailable"


async def test_find_active_care_flow_sees_active_pathways(
    api: Api,
    worker: RunningWorker,
    stand_in: AwellStandIn,
    store: Store,
    settings: Settings,
    temporal_client: Client,
) -> None:
    hook_id = await awell_webhook(api)
    detail = await send(api, hook_id, visit())
    backend = build_awell(temporal_client, store, settings, LoopRunner(asyncio.get_running_loop()))
    assert backend is not None

    async def active(patient_id: str) -> str | None:
        return await asyncio.to_thread(backend.find_active_care_flow, "visit-follow-up", patient_id)

    assert await active(detail["patient_id"]) == detail["care_flow_id"]
    # The request that started the pathway does not count it (a run that starts over after it).
    own = await asyncio.to_thread(
        backend.find_active_care_flow, "visit-follow-up", detail["patient_id"], detail["request_id"]
    )
    assert own is None
    stand_in.pathways[detail["care_flow_id"]]["status"] = "completed"
    assert await active(detail["patient_id"]) is None
    assert stand_in.invalid == []


async def test_import_that_would_break_an_enabled_webhook_needs_force(
    api: Api, stand_in: AwellStandIn
) -> None:
    hook_id = await awell_webhook(api)
    stand_in.definitions[0]["data_point_definitions"].append(
        {"id": "dp-new", "key": "new_required", "title": "New", "valueType": "STRING"}
    )
    answer = (await api.admin("POST", "/v1/care-flow-definitions/import")).json()
    assert answer["updated"] == [] and answer["disabled_webhooks"] == []
    (skipped,) = answer["skipped"]
    assert skipped["code"] == "webhooks_left_incomplete" and hook_id in skipped["message"]
    answer = (await api.admin("POST", "/v1/care-flow-definitions/import?force=true")).json()
    assert answer["updated"] == ["visit-follow-up"] and answer["disabled_webhooks"] == [hook_id]
    hook = (await api.admin("GET", f"/v1/webhooks/{hook_id}")).json()
    assert hook["enabled"] is False


@pytest.mark.parametrize("operation", ["startPathway", "createPatient"])
async def test_a_call_awell_finishes_after_the_retry_looked_starts_nothing_twice(
    api: Api, worker: RunningWorker, stand_in: AwellStandIn, operation: str
) -> None:
    """Awell accepts the call but does the work 5 s later, past the 2 s client timeout and past
    the retry's look-up 1 s after it: the retry must not call again until the first call can no
    longer land (``settle``), then find the patient / adopt the pathway."""
    hook_id = await awell_webhook(api)
    stand_in.slow_seconds = 5.0
    stand_in.fail(operation, "slow")
    detail = await send(api, hook_id, visit(mrn=9090))
    assert detail["status"] == "SUCCESS", detail
    await asyncio.sleep(stand_in.slow_seconds)  # every call sent has landed by now
    assert len(stand_in.patients) == 1, stand_in.patients
    assert len(stand_in.pathways) == 1, stand_in.pathways
    assert stand_in.calls[operation] == 1
    (pathway,) = stand_in.pathways.values()
    (patient,) = stand_in.patients.values()
    assert detail["care_flow_id"] == pathway["id"] and detail["patient_id"] == patient["id"]
    assert stand_in.invalid == []


async def test_import_skips_a_pathway_definition_it_cannot_hold_and_imports_the_rest(
    api: Api, stand_in: AwellStandIn
) -> None:
    """One pathway definition whose id is longer than a local definition can hold must not
    block the import of the others (nor be answered as the caller's ``invalid_request``)."""
    stand_in.add_definition("p" * 3000, "Too long an id", [])
    stand_in.add_definition("pd-after", "After it", [])
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert sorted(body["created"]) == ["after-it", "visit-follow-up"]
    (skipped,) = body["skipped"]
    assert skipped["code"] == "invalid_definition"
    assert "p" * 3000 not in skipped["message"]  # a remote value of any size is not echoed


async def test_concurrent_imports_each_answer_and_create_one_definition_per_pathway(
    api: Api, stand_in: AwellStandIn
) -> None:
    for n in range(8):
        stand_in.add_definition(f"pd-{n}", f"Pathway {n}", [])
    answers = await asyncio.gather(
        *(api.admin("POST", "/v1/care-flow-definitions/import") for _ in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    listed = (await api.admin("GET", "/v1/care-flow-definitions?limit=100")).json()["items"]
    pathways = [d["backend"]["pathway_definition_id"] for d in listed]
    assert sorted(pathways) == sorted(["pd-visit", *(f"pd-{n}" for n in range(8))])
