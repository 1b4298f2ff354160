"""``start_care_flow`` with ActivityEnvironment on a real SQLite store: at most once per
request, and a definition that cannot start is final."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.care_flows import CareFlowActivities
from backends.builtin import BuiltinBackend
from careflow.messages import StartCareFlowInput
from persistence.store import Store
from tests.factories import store_definition


def test_start_care_flow_is_idempotent_on_request_id(store: Store) -> None:
    store_definition(store)
    patient, _ = store.patients.create_patient(None, {}, "req_1")
    activities = CareFlowActivities(BuiltinBackend(store))
    request = StartCareFlowInput(
        request_id="req_1",
        care_flow_definition_id="intake",
        patient_id=patient.id,
        data_points={"age": 4},
    )
    env = ActivityEnvironment()
    first = env.run(activities.start_care_flow, request)
    again = env.run(activities.start_care_flow, request)
    assert first.created and not again.created
    assert first.care_flow_id == again.care_flow_id
    assert store.patients.count_care_flows() == 1


@pytest.mark.parametrize(
    ("definition_id", "code"),
    [("intake", "care_flow_definition_unpublished"), ("nope", "care_flow_definition_not_found")],
)
def test_start_care_flow_refuses_for_good(store: Store, definition_id: str, code: str) -> None:
    store_definition(store, published=False)
    patient, _ = store.patients.create_patient(None, {}, "req_1")
    activities = CareFlowActivities(BuiltinBackend(store))
    request = StartCareFlowInput(
        request_id="req_1", care_flow_definition_id=definition_id, patient_id=patient.id
    )
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities.start_care_flow, request)
    assert raised.value.non_retryable
    assert raised.value.type == code
    assert store.patients.count_care_flows() == 0
