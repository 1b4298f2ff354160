"""``resolve_patient`` with ActivityEnvironment on a real SQLite store: find or create, keyed by
identifier, or by request id for an anonymous patient."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.testing import ActivityEnvironment

from activities.patients import PatientActivities
from backends.builtin import BuiltinBackend
from careflow.messages import ResolvePatientInput, ResolvePatientResult
from careflow.models import Identifier
from persistence.store import Store
from tests.factories import MRN_SYSTEM


async def test_anonymous_patient_is_reused_on_retry(store: Store) -> None:
    """Also: ActivityEnvironment runs a sync activity from an async test (off the loop)."""
    activities = PatientActivities(BuiltinBackend(store))
    env = ActivityEnvironment()

    def resolve(request_id: str) -> ResolvePatientResult:
        return env.run(activities.resolve_patient, ResolvePatientInput(request_id=request_id))

    first = await asyncio.to_thread(resolve, "req_abc")
    again = resolve("req_abc")
    assert first.created and first.anonymous
    assert not again.created and again.patient_id == first.patient_id
    other = resolve("req_def")
    assert other.patient_id != first.patient_id
    assert store.patients.count_patients() == 2


def test_concurrent_resolution_creates_one_patient(store: Store) -> None:
    activities = PatientActivities(BuiltinBackend(store))
    identifier = Identifier(system=MRN_SYSTEM, value="A-1")

    def resolve(i: int) -> ResolvePatientResult:
        request = ResolvePatientInput(request_id=f"req_{i}", patient_identifier=identifier)
        return ActivityEnvironment().run(activities.resolve_patient, request)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(resolve, range(20)))
    assert len({r.patient_id for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    assert not any(r.anonymous for r in results)
    assert store.patients.count_patients() == 1
