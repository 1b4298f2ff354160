"""Fixtures of the awell backend's tests: the GraphQL stand-in on a free port, settings that
point at it, and the patient-resolution worker beside the test's worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from careflow.settings import Settings
from persistence.store import Store
from tests.backends.awell.stand_in import API_KEY, AwellStandIn, serve_stand_in
from worker import build_patient_worker

VISIT_POINTS = [
    {"id": "dp-reason", "key": "reason", "title": "Reason", "valueType": "STRING"},
    {"id": "dp-age", "key": "age", "title": "Age", "valueType": "NUMBER"},
    {"id": "dp-urgent", "key": "urgent", "title": "Urgent", "valueType": "BOOLEAN"},
    {"id": "dp-date", "key": "visit_date", "title": "Visit date", "valueType": "DATE"},
    {
        "id": "dp-tags",
        "key": "tags",
        "title": "Tags",
        "valueType": "STRINGS_ARRAY",
        "optional": True,
    },
    {
        "id": "dp-phone",
        "key": "callback",
        "title": "Callback",
        "valueType": "TELEPHONE",
        "optional": True,
    },
]


@pytest.fixture
async def stand_in() -> AsyncIterator[AwellStandIn]:
    tenant = AwellStandIn()
    tenant.add_definition("pd-visit", "Visit follow-up", VISIT_POINTS)
    async with serve_stand_in(tenant) as url:
        tenant.url = url  # type: ignore[attr-defined]
        yield tenant


@pytest.fixture
def settings(settings: Settings, stand_in: AwellStandIn) -> Settings:
    """The test's settings with Awell configured to the stand-in (2 s per call; 6 attempts, so
    a loaded machine's dev-server hiccup does not exhaust the retries that a fault uses)."""
    return settings.model_copy(
        update={
            "awell_api_url": stand_in.url,  # type: ignore[attr-defined]
            "awell_api_key": SecretStr(API_KEY),
            "awell_timeout_seconds": 2.0,
            "activity_max_attempts": 6,
        }
    )


@pytest.fixture
async def patient_worker(
    temporal_client: Client, store: Store, settings: Settings
) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=4)
    worker = build_patient_worker(temporal_client, store, settings, executor)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        await worker.shutdown()
        with contextlib.suppress(Exception):
            await task
        executor.shutdown(wait=False, cancel_futures=True)
