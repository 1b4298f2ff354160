"""Trigger conditions and the enrollment rule through HTTP (real uvicorn, worker, Temporal dev
server, SQLite): IGNORED answers, what the request log and the lists show, retries, the test
link and the preview (contract §3, §4, §5b)."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from persistence.store import Store
from tests.conftest import Api, RunningWorker
from tests.factories import (
    JSON,
    add_identifier_system,
    add_webhook,
    post_sample,
    sample_payload,
    save_definition,
)

ATTENDEE_SYSTEM = "https://cal.example.org/attendee-email"
BOOKING_CREATED = {
    "match": "all",
    "rules": [{"path": "$.triggerEvent", "op": "equals", "value": "BOOKING_CREATED"}],
}
CALCOM = "calcom-booking-created"
TYPEFORM = "typeform-form-response"


def calcom(**changes: Any) -> dict[str, Any]:
    """The Cal.com sample with top-level or ``payload`` fields changed (None removes)."""
    body: dict[str, Any] = json.loads(sample_payload(CALCOM))
    for key, value in changes.items():
        target = body if key == "triggerEvent" else body["payload"]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return body


async def calcom_webhook(api: Api, **fields: Any) -> dict[str, Any]:
    """A booking webhook: patient by attendee email, data points start time and booking uid."""
    await add_identifier_system(api, "attendee-email", ATTENDEE_SYSTEM)
    await save_definition(
        api,
        "booking",
        [{"id": "start", "value_type": "date"}, {"id": "uid", "value_type": "string"}],
        title="Booking follow-up",
    )
    return await add_webhook(
        api,
        name="Cal.com",
        care_flow_definition_id="booking",
        data_point_mappings=[
            {"data_point_definition_id": "start", "path": "$.payload.startTime"},
            {"data_point_definition_id": "uid", "path": "$.payload.uid"},
        ],
        patient_identifier={
            "system": ATTENDEE_SYSTEM,
            "value_path": "$.payload.attendees[0].email",
        },
        **fields,
    )


async def test_calcom_only_booking_created_starts_a_care_flow(
    api: Api, worker: RunningWorker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    hook = await calcom_webhook(api, conditions=BOOKING_CREATED)
    created = await post_sample(api, hook["id"], CALCOM)
    assert created.status_code == 202, created.text
    done = await api.wait_status(created.json()["request_id"], {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS"

    # A cancellation without the start time (a required data point): IGNORED, not REJECTED.
    cancelled = calcom(triggerEvent="BOOKING_CANCELLED", startTime=None)
    with caplog.at_level(logging.INFO, logger="api.ingest"):
        answer = await api.http.post(f"/hooks/{hook['id']}", json=cancelled)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    request_id = body["request_id"]
    assert body["status"] == "IGNORED"
    assert body["reasons"] == [
        {
            "code": "conditions_not_met",
            "message": "the webhook's conditions are not met",
            "rules": [{"rule": "1", "path": "$.triggerEvent", "op": "equals", "outcome": False}],
        }
    ]
    assert f"request={request_id} reason=conditions_not_met" in caplog.text
    assert "1:$.triggerEvent:equals=false" in caplog.text
    assert "BOOKING_CANCELLED" not in caplog.text

    detail = await api.wait_status(request_id, {"IGNORED"})
    assert detail["verdict"] == "IGNORED"
    assert detail["reasons"][0]["code"] == "conditions_not_met"
    assert detail["patient_id"] is None and detail["care_flow_id"] is None
    assert [t["status"] for t in detail["timeline"]] == ["RECEIVED", "IGNORED"]
    assert store.patients.count_patients() == 1
    assert store.patients.count_care_flows() == 1

    listed = await api.admin("GET", f"/v1/requests?webhook_id={hook['id']}&status=IGNORED")
    assert [r["request_id"] for r in listed.json()["items"]] == [request_id]
    assert listed.json()["items"][0]["status"] == "IGNORED"


async def test_ignored_is_retryable_against_the_current_configuration(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await calcom_webhook(api, conditions=BOOKING_CREATED)
    rescheduled = calcom(triggerEvent="BOOKING_RESCHEDULED")
    answer = await api.http.post(f"/hooks/{hook['id']}", json=rescheduled)
    request_id = answer.json()["request_id"]
    await api.wait_status(request_id, {"IGNORED"})

    # A retry with the conditions unchanged re-evaluates them: IGNORED again.
    retried = await api.admin("POST", f"/v1/requests/{request_id}/retry")
    assert retried.status_code == 202, retried.text
    again = await api.wait_status(request_id, {"IGNORED", "SUCCESS"})
    assert again["temporal"]["run_id"] == retried.json()["run_id"]
    assert again["status"] == "IGNORED"

    widened = {
        "rules": [
            {
                "path": "$.triggerEvent",
                "op": "in",
                "value": ["BOOKING_CREATED", "BOOKING_RESCHEDULED"],
            }
        ]
    }
    patched = await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json={"conditions": widened})
    assert patched.status_code == 200, patched.text
    bulk = await api.admin(
        "POST", "/v1/requests/retry", json={"webhook_id": hook["id"], "status": "IGNORED"}
    )
    assert bulk.json() == {"reset": 1, "skipped": 0, "skipped_by_reason": {}}
    done = await api.wait_status(request_id, {"SUCCESS", "FAILED"})
    assert done["status"] == "SUCCESS" and done["reasons"] == []
    assert store.patients.count_care_flows() == 1


async def test_skip_if_enrolled_ignores_a_second_booking_for_the_patient(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await calcom_webhook(api, skip_if_enrolled=True)
    first = await post_sample(api, hook["id"], CALCOM)
    started = await api.wait_status(first.json()["request_id"], {"SUCCESS", "FAILED"})
    assert started["status"] == "SUCCESS"

    second = await api.http.post(f"/hooks/{hook['id']}", json=calcom(uid="another-booking"))
    assert second.status_code == 202  # enrollment is known after patient resolution
    skipped = await api.wait_status(second.json()["request_id"], {"IGNORED", "SUCCESS", "FAILED"})
    assert skipped["status"] == "IGNORED"
    assert skipped["patient_id"] == started["patient_id"]
    assert skipped["care_flow_id"] is None
    assert skipped["reasons"] == [
        {
            "code": "already_enrolled",
            "message": "the patient already has an active care flow of this definition",
            "rules": None,
            "care_flow_id": started["care_flow_id"],
            "request_id": None,
        }
    ]
    assert skipped["timeline"][-1]["message"] == "already_enrolled"
    assert store.patients.count_care_flows() == 1

    # Another patient is not enrolled: a care flow starts.
    other = calcom()
    other["payload"]["attendees"][0]["email"] = "someone.else@example.com"
    third = await api.http.post(f"/hooks/{hook['id']}", json=other)
    assert (await api.wait_status(third.json()["request_id"], {"SUCCESS", "IGNORED"}))[
        "status"
    ] == "SUCCESS"

    # Without the rule, the same patient gets a second care flow.
    await api.admin("PATCH", f"/v1/webhooks/{hook['id']}", json={"skip_if_enrolled": False})
    fourth = await api.http.post(f"/hooks/{hook['id']}", json=calcom(uid="third-booking"))
    assert (await api.wait_status(fourth.json()["request_id"], {"SUCCESS", "IGNORED"}))[
        "status"
    ] == "SUCCESS"
    assert store.patients.count_care_flows() == 3


async def test_typeform_score_conditions_on_the_test_link_and_preview(
    api: Api, worker: RunningWorker
) -> None:
    await save_definition(
        api, "survey", [{"id": "score", "value_type": "number"}], title="Survey follow-up"
    )
    high_score = {
        "rules": [
            {
                "path": "$.form_response.calculated.score",
                "op": "gte",
                "value": 7,
                "value_type": "number",
            }
        ]
    }
    hook = await add_webhook(
        api,
        name="Typeform",
        care_flow_definition_id="survey",
        data_point_mappings=[
            {"data_point_definition_id": "score", "path": "$.form_response.calculated.score"}
        ],
        conditions=high_score,
    )
    test = await post_sample(api, hook["id"], TYPEFORM, test=True)
    assert test.status_code == 200, test.text
    assert test.json()["verdict"] == "SCHEDULED"
    assert test.json()["conditions"] == {
        "met": True,
        "rules": [
            {
                "rule": "1",
                "path": "$.form_response.calculated.score",
                "op": "gte",
                "outcome": True,
                "note": None,
            }
        ],
    }

    low: dict[str, Any] = json.loads(sample_payload(TYPEFORM))
    low["form_response"]["calculated"]["score"] = 5
    test_low = await api.http.post(f"/hooks/{hook['id']}/test", json=low)
    assert test_low.json()["verdict"] == "IGNORED"
    assert test_low.json()["conditions"]["met"] is False
    assert test_low.json()["reasons"][0]["code"] == "conditions_not_met"
    detail = await api.wait_status(test_low.json()["request_id"], {"TEST"})
    assert detail["verdict"] == "IGNORED"

    # The preview evaluates proposed conditions on a kept test payload (the newest: score 5).
    stricter = copy.deepcopy(high_score)
    stricter["rules"][0]["value"] = 4
    preview = await api.admin(
        "POST", f"/v1/webhooks/{hook['id']}/preview", json={"conditions": stricter}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["verdict"] == "SCHEDULED"
    assert preview.json()["conditions"]["rules"][0]["outcome"] is True
    bad = copy.deepcopy(high_score)
    bad["rules"][0]["value"] = "seven"
    preview = await api.admin(
        "POST", f"/v1/webhooks/{hook['id']}/preview", json={"conditions": bad}
    )
    assert preview.json()["verdict"] == "REJECTED"
    assert preview.json()["errors"][0]["code"] == "invalid_condition"


@pytest.mark.parametrize(
    ("conditions", "fragment"),
    [
        ({"rules": [{"path": "$.[", "op": "equals", "value": "x"}]}, "rule 1 (equals)"),
        (
            {
                "rules": [
                    {"path": "$.a", "op": "exists"},
                    {"path": "$.n", "op": "contains", "value": 1, "value_type": "number"},
                ]
            },
            "rule 2 (contains)",
        ),
        ({"rules": [{"path": "$.n", "op": "gt", "value": "x", "value_type": "number"}]}, "coerce"),
    ],
)
async def test_unusable_conditions_are_422_naming_the_rule(
    api: Api, conditions: dict[str, Any], fragment: str
) -> None:
    await save_definition(api, "open", [{"id": "anything", "value_type": "json", "optional": True}])
    fields = {"name": "c", "care_flow_definition_id": "open", "conditions": conditions}
    created = await api.admin("POST", "/v1/webhooks", json=fields)
    assert created.status_code == 422, created.text
    [error] = created.json()["errors"]
    assert error["code"] == "invalid_condition" and fragment in error["message"]

    hook = await add_webhook(api, enable=False, name="c", care_flow_definition_id="open")
    patched = await api.admin(
        "PATCH", f"/v1/webhooks/{hook['id']}", json={"conditions": conditions}
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["code"] == "invalid_condition"


@pytest.mark.parametrize("value", ["yes", 1, "true", "on"])
async def test_skip_if_enrolled_is_a_strict_boolean_with_one_error_code(
    api: Api, value: Any
) -> None:
    await save_definition(api, "open", [{"id": "anything", "value_type": "json", "optional": True}])
    fields = {"name": "c", "care_flow_definition_id": "open", "skip_if_enrolled": value}
    created = await api.admin("POST", "/v1/webhooks", json=fields)
    assert created.status_code == 422, created.text
    hook = await add_webhook(api, enable=False, name="c", care_flow_definition_id="open")
    patched = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"skip_if_enrolled": value},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 422, patched.text
    # A merge patch is refused with the code POST uses.
    assert {e["code"] for e in patched.json()["errors"]} == {
        e["code"] for e in created.json()["errors"]
    }


async def test_conditions_and_rules_round_trip(api: Api) -> None:
    await save_definition(api, "open", [{"id": "anything", "value_type": "json", "optional": True}])
    fields = {
        "name": "c",
        "care_flow_definition_id": "open",
        "conditions": BOOKING_CREATED,
        "skip_if_enrolled": True,
        "debounce": {"key_path": "$.payload.uid", "seconds": 30},
    }
    created = await api.admin("POST", "/v1/webhooks", json=fields)
    assert created.status_code == 201, created.text
    got = (await api.admin("GET", f"/v1/webhooks/{created.json()['id']}")).json()
    assert got["conditions"]["rules"][0]["path"] == "$.triggerEvent"
    assert got["skip_if_enrolled"] is True
    assert got["debounce"] == {"key_path": "$.payload.uid", "seconds": 30}
    nested = {"match": "any", "rules": [BOOKING_CREATED, {"path": "$.x", "op": "exists"}]}
    patched = await api.admin(
        "PATCH", f"/v1/webhooks/{got['id']}", json={"conditions": nested, "debounce": None}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["conditions"]["rules"][0]["match"] == "all"
    assert patched.json()["debounce"] is None
    refused = await api.admin(
        "PATCH", f"/v1/webhooks/{got['id']}", json={"debounce": {"key_path": "$.a", "seconds": 0}}
    )
    assert refused.status_code == 422


async def test_ignored_answer_is_json_for_form_posts(api: Api, worker: RunningWorker) -> None:
    await save_definition(api, "open", [{"id": "anything", "value_type": "json", "optional": True}])
    hook = await add_webhook(
        api,
        name="form",
        care_flow_definition_id="open",
        conditions={"rules": [{"path": "$.event", "op": "in", "value": ["a", "b"]}]},
    )
    answer = await api.http.post(
        f"/hooks/{hook['id']}",
        content=b"event=c&event=d",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and answer.json()["status"] == "IGNORED"
    matched = await api.http.post(
        f"/hooks/{hook['id']}", content=b'{"event": ["c", "b"]}', headers=JSON
    )
    assert matched.status_code == 202


async def test_skip_if_enrolled_rerun_after_its_own_start_still_succeeds(
    api: Api, worker: RunningWorker, store: Store, temporal_client: Client
) -> None:
    """The request's own care flow is no enrollment: a run that starts over after
    ``start_care_flow`` committed (a worker killed before its first workflow task completed,
    which re-runs the local activities; here the Temporal UI's reset to that task) finds the care
    flow this request started and succeeds with it instead of IGNORED ``already_enrolled``."""
    hook = await calcom_webhook(api, skip_if_enrolled=True)
    first = await post_sample(api, hook["id"], CALCOM)
    request_id = first.json()["request_id"]
    started = await api.wait_status(request_id, {"SUCCESS", "FAILED"})
    assert started["status"] == "SUCCESS"

    handle = temporal_client.get_workflow_handle(request_id)
    first_task = [
        e.event_id
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ][0]
    reset = await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=request_id),
            reason="test",
            workflow_task_finish_event_id=first_task,
            request_id=uuid.uuid4().hex,
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
    )
    await temporal_client.get_workflow_handle(request_id, run_id=reset.run_id).result()
    again = await api.wait_status(request_id, {"SUCCESS", "IGNORED", "FAILED"})
    assert again["status"] == "SUCCESS", again
    assert again["care_flow_id"] == started["care_flow_id"]
    assert again["reasons"] == []
    assert store.patients.count_care_flows() == 1
