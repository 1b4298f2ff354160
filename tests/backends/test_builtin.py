"""The built-in backend on a real SQLite store: refusals, transient faults, the protocol.

Idempotent starts and patient reuse through the activities are covered by
``tests/activities/test_activities.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from backends.base import BackendRefusedError, BackendUnavailableError, CareFlowBackend
from backends.builtin import BuiltinBackend
from careflow.errors import TransientStoreError
from careflow.models import CareFlowDefinition, Identifier
from careflow.settings import Settings
from persistence.store import Store
from tests.factories import unreachable_database

MRN = Identifier(system="https://example-hospital.org/mrn", value="24680")


def test_patients_are_found_after_they_are_created(store: Store) -> None:
    backend = BuiltinBackend(store)
    assert backend.find_patient(MRN) is None
    patient, created = backend.create_patient(MRN, {"first_name": "Ann"}, "req_1")
    assert created
    assert backend.find_patient(MRN) == patient
    anonymous, created = backend.create_patient(None, {}, "req_1")
    assert created and anonymous.anonymous and anonymous.id != patient.id


def test_a_published_definition_starts_a_care_flow(store: Store) -> None:
    store.configuration.create_care_flow_definition(
        CareFlowDefinition(id="intake", title="Intake", published=True)
    )
    backend = BuiltinBackend(store)
    patient, _ = backend.create_patient(MRN, {}, "req_1")
    flow, started = backend.start_care_flow("intake", patient.id, {"age": 4}, "req_1")
    assert started
    assert store.patients.get_care_flow(flow.id) == flow


@pytest.mark.parametrize(
    ("definitions", "code"),
    [
        ([], "care_flow_definition_not_found"),
        ([CareFlowDefinition(id="intake", title="I")], "care_flow_definition_unpublished"),
        (
            [CareFlowDefinition(id="other", title="O", published=True)],
            "care_flow_definition_not_found",
        ),
    ],
    ids=["missing", "unpublished", "another-published"],
)
def test_an_unstartable_definition_is_refused_for_good(
    store: Store, definitions: list[CareFlowDefinition], code: str
) -> None:
    for definition in definitions:
        store.configuration.create_care_flow_definition(definition)
    backend = BuiltinBackend(store)
    patient, _ = backend.create_patient(None, {}, "req_1")
    with pytest.raises(BackendRefusedError) as raised:
        backend.start_care_flow("intake", patient.id, {}, "req_1")
    assert raised.value.code == code
    assert store.patients.count_care_flows() == 0


def test_the_active_care_flow_is_the_patients_earliest_of_the_definition(store: Store) -> None:
    for definition_id in ("intake", "other"):
        store.configuration.create_care_flow_definition(
            CareFlowDefinition(id=definition_id, title=definition_id, published=True)
        )
    backend = BuiltinBackend(store)
    patient, _ = backend.create_patient(MRN, {}, "req_1")
    someone, _ = backend.create_patient(None, {}, "req_2")
    assert backend.find_active_care_flow("intake", patient.id) is None
    backend.start_care_flow("other", patient.id, {}, "req_1")
    backend.start_care_flow("intake", someone.id, {}, "req_2")
    assert backend.find_active_care_flow("intake", patient.id) is None
    first, _ = backend.start_care_flow("intake", patient.id, {}, "req_3")
    # The asking request's own care flow is no enrollment (a run that starts over after it).
    assert backend.find_active_care_flow("intake", patient.id, "req_3") is None
    backend.start_care_flow("intake", patient.id, {}, "req_4")
    assert backend.find_active_care_flow("intake", patient.id) == first.id
    assert backend.find_active_care_flow("intake", patient.id, "req_3") != first.id
    assert backend.find_active_care_flow("intake", patient.id, "req_4") == first.id


def test_a_refusal_carries_its_code_and_message() -> None:
    error = BackendRefusedError("data_rejected", "the backend refused the data points")
    assert (error.code, error.message, str(error)) == (
        "data_rejected",
        "the backend refused the data points",
        "the backend refused the data points",
    )
    assert not isinstance(error, BackendUnavailableError)


CALLS: dict[str, Callable[[BuiltinBackend], Any]] = {
    "find_patient": lambda b: b.find_patient(MRN),
    "create_patient": lambda b: b.create_patient(MRN, {}, "req_1"),
    "start_care_flow": lambda b: b.start_care_flow("intake", "pat_1", {}, "req_1"),
    "find_active_care_flow": lambda b: b.find_active_care_flow("intake", "pat_1"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_an_unreachable_database_is_a_transient_backend_fault(
    store: Store, settings: Settings, call: Callable[[BuiltinBackend], Any]
) -> None:
    backend = BuiltinBackend(store)
    with unreachable_database(store, settings), pytest.raises(BackendUnavailableError) as raised:
        call(backend)
    assert isinstance(raised.value.__cause__, TransientStoreError)


@pytest.mark.parametrize(
    "name", ["find_patient", "create_patient", "start_care_flow", "find_active_care_flow"]
)
def test_the_builtin_backend_has_the_protocols_signatures(name: str) -> None:
    """The built-in backend is the protocol's reference: same names, kinds and annotations."""
    assert inspect.signature(getattr(BuiltinBackend, name)) == inspect.signature(
        getattr(CareFlowBackend, name)
    )


def test_a_care_flow_for_a_missing_patient_is_refused_as_such(store: Store) -> None:
    store.configuration.create_care_flow_definition(
        CareFlowDefinition(id="intake", title="Intake", published=True)
    )
    with pytest.raises(BackendRefusedError) as refused:
        BuiltinBackend(store).start_care_flow("intake", "pat_nobody", {}, "req_1")
    assert refused.value.code == "patient_not_found"
    assert store.patients.count_care_flows() == 0
