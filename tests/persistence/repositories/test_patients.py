"""Patients and care flows of the built-in backend on a real SQLite store.

Concurrent insert-or-fetch is covered on SQLite by ``tests/activities/test_activities.py`` and on
PostgreSQL by ``tests/persistence/test_store_postgres.py``.
"""

from __future__ import annotations

import pytest

from careflow.errors import NotFoundError
from careflow.models import Identifier
from persistence.store import Store

SYSTEM = "https://example-hospital.org/mrn"
MRN = Identifier(system=SYSTEM, value="24680")


def test_a_new_identifier_creates_a_patient_with_its_profile(store: Store) -> None:
    patient, created = store.patients.create_patient(MRN, {"first_name": "Ann"}, "req_1")
    assert created
    assert patient.id.startswith("pat_")
    assert patient.identifiers == [MRN]
    assert patient.anonymous is False
    assert patient.profile == {"first_name": "Ann"}
    assert patient.created_at.tzinfo is not None
    assert store.patients.get_patient(patient.id) == patient


def test_a_known_identifier_finds_the_patient_and_keeps_the_first_profile(store: Store) -> None:
    first, _ = store.patients.create_patient(MRN, {"first_name": "Ann"}, "req_1")
    again, created = store.patients.create_patient(MRN, {"first_name": "Bob"}, "req_2")
    assert not created
    assert again == first
    assert store.patients.get_patient(first.id).profile == {"first_name": "Ann"}
    assert store.patients.count_patients() == 1


def test_identifiers_match_system_and_value_exactly(store: Store) -> None:
    patient, _ = store.patients.create_patient(MRN, {}, "req_1")
    assert store.patients.find_patient(MRN) == patient
    for other in (
        Identifier(system="urn:other", value=MRN.value),
        Identifier(system=SYSTEM, value="24680 "),
        Identifier(system=SYSTEM.upper(), value=MRN.value),
    ):
        assert store.patients.find_patient(other) is None
    same_value_other_system, created = store.patients.create_patient(
        Identifier(system="urn:other", value=MRN.value), {}, "req_2"
    )
    assert created and same_value_other_system.id != patient.id


def test_an_anonymous_patient_is_keyed_by_its_request(store: Store) -> None:
    first, created = store.patients.create_patient(None, {"sex": "female"}, "req_1")
    again, created_again = store.patients.create_patient(None, {}, "req_1")
    other, created_other = store.patients.create_patient(None, {}, "req_2")
    assert (created, created_again, created_other) == (True, False, True)
    assert first.anonymous and first.identifiers == []
    assert again == first
    assert other.id != first.id


def test_an_unknown_patient_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.patients.get_patient("pat_missing")
    assert raised.value.errors[0].code == "patient_not_found"


def test_a_request_starts_one_care_flow_whatever_it_is_retried_with(store: Store) -> None:
    patient, _ = store.patients.create_patient(MRN, {}, "req_1")
    flow, started = store.patients.start_care_flow("intake", patient.id, {"age": 4}, "req_1")
    again, started_again = store.patients.start_care_flow("intake", patient.id, {"age": 5}, "req_1")
    assert started and not started_again
    assert again == flow
    assert flow.id.startswith("cf_")
    assert (flow.care_flow_definition_id, flow.patient_id, flow.request_id) == (
        "intake",
        patient.id,
        "req_1",
    )
    assert flow.data_points == {"age": 4}
    assert flow.started_at.tzinfo is not None
    assert store.patients.get_care_flow(flow.id) == flow
    assert store.patients.count_care_flows() == 1


def test_care_flows_are_listed_in_start_order_and_by_patient(store: Store) -> None:
    ann, _ = store.patients.create_patient(MRN, {}, "req_1")
    bob, _ = store.patients.create_patient(None, {}, "req_2")
    first, _ = store.patients.start_care_flow("intake", ann.id, {}, "req_1")
    second, _ = store.patients.start_care_flow("intake", bob.id, {}, "req_2")
    third, _ = store.patients.start_care_flow("visit", ann.id, {}, "req_3")
    assert store.patients.list_care_flows() == [first, second, third]
    assert store.patients.list_care_flows(patient_id=ann.id) == [first, third]
    assert store.patients.list_care_flows(patient_id="pat_nobody") == []


def test_an_unknown_care_flow_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.patients.get_care_flow("cf_missing")
    assert raised.value.errors[0].code == "care_flow_not_found"
