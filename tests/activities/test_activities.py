"""Activity unit tests with ActivityEnvironment on a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.care_flows import CareFlowActivities
from activities.patients import PatientActivities
from activities.validation import ValidationActivities
from backends.builtin import BuiltinBackend
from careflow.messages import ResolvePatientInput, StartCareFlowInput, ValidateRequestInput
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    Identifier,
    IdentifierSystem,
    RequestStatus,
    Webhook,
)
from persistence.config_cache import ConfigCache
from persistence.store import Store, new_webhook_id

SYSTEM = "https://example-hospital.org/mrn"


def test_anonymous_patient_is_reused_on_retry(store: Store) -> None:
    activities = PatientActivities(BuiltinBackend(store))
    env = ActivityEnvironment()
    request = ResolvePatientInput(request_id="req_abc")
    first = env.run(activities.resolve_patient, request)
    again = env.run(activities.resolve_patient, request)
    assert first.created and first.anonymous
    assert not again.created and again.patient_id == first.patient_id
    other = env.run(activities.resolve_patient, ResolvePatientInput(request_id="req_def"))
    assert other.patient_id != first.patient_id
    assert store.patients.count_patients() == 2


def test_concurrent_resolution_creates_one_patient(store: Store) -> None:
    activities = PatientActivities(BuiltinBackend(store))
    identifier = Identifier(system=SYSTEM, value="A-1")

    def resolve(i: int) -> str:
        request = ResolvePatientInput(request_id=f"req_{i}", patient_identifier=identifier)
        return ActivityEnvironment().run(activities.resolve_patient, request).patient_id

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = set(pool.map(resolve, range(20)))
    assert len(ids) == 1
    assert store.patients.count_patients() == 1


def _definition(store: Store, published: bool) -> None:
    store.configuration.create_care_flow_definition(
        CareFlowDefinition(
            id="intake",
            title="Intake",
            published=published,
            data_point_definitions=[DataPointDefinition(id="age", value_type="number")],
        )
    )


def test_start_care_flow_is_idempotent_on_request_id(store: Store) -> None:
    _definition(store, published=True)
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


def test_start_care_flow_refuses_unpublished_for_good(store: Store) -> None:
    _definition(store, published=False)
    patient, _ = store.patients.create_patient(None, {}, "req_1")
    activities = CareFlowActivities(BuiltinBackend(store))
    request = StartCareFlowInput(
        request_id="req_1", care_flow_definition_id="intake", patient_id=patient.id
    )
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities.start_care_flow, request)
    assert raised.value.non_retryable
    assert raised.value.type == "care_flow_definition_unpublished"


def test_validate_request_reads_the_current_configuration(store: Store) -> None:
    _definition(store, published=True)
    store.configuration.create_identifier_system(IdentifierSystem(name="mrn", system=SYSTEM))
    now = datetime.now(UTC)
    hook = store.configuration.insert_webhook(
        Webhook(
            id=new_webhook_id(),
            name="h",
            care_flow_definition_id="intake",
            enabled=True,
            data_point_mappings=[DataPointMapping(data_point_definition_id="age", path="$.a")],
            created_at=now,
            updated_at=now,
        )
    )
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    body = {"a": "7", "patient_identifier": {"system": SYSTEM, "value": " 12 "}}
    request = ValidateRequestInput(
        request_id="r",
        webhook_id=hook.id,
        body=json.dumps(body).encode(),
        media_type="application/json",
    )
    result = ActivityEnvironment().run(activities.validate_request, request)
    assert result.verdict == RequestStatus.SCHEDULED
    assert result.data_points == {"age": 7}
    assert result.patient_identifier == Identifier(system=SYSTEM, value="12")
    body["patient_identifier"] = {"system": "urn:unknown", "value": "1"}
    rejected = ActivityEnvironment().run(
        activities.validate_request,
        request.model_copy(update={"body": json.dumps(body).encode()}),
    )
    assert rejected.verdict == RequestStatus.REJECTED
    assert [e.code for e in rejected.errors] == ["unknown_identifier_system"]


async def test_activity_environment_is_usable_from_async(store: Store) -> None:
    activities = PatientActivities(BuiltinBackend(store))
    result = await asyncio.to_thread(
        ActivityEnvironment().run, activities.resolve_patient, ResolvePatientInput(request_id="r9")
    )
    assert result.anonymous
