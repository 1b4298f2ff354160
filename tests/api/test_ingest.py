"""``api/ingest.py``'s ``IngestService`` on its own (real Temporal, real SQLite, no worker): what
each outcome starts, the dedupe key and the rate limit. The HTTP answers to every kind of
request are in ``routes/test_ingest.py``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from temporalio.client import Client

from api import request_history
from api.ingest import MISS_REFRESH_SECONDS, IngestService
from api.paging import PageTokens
from api.request_log import RequestLog
from api.start_gate import StartOverloadedError
from careflow.models import Identifier
from careflow.settings import Settings
from infra import temporal
from persistence.config_cache import ConfigCache
from persistence.store import Store, new_webhook_id
from tests.factories import MRN_SYSTEM, store_webhook

IDENTIFIER = {"system": MRN_SYSTEM, "value": "7"}
COMPLETE = json.dumps({"age": 4, "patient_identifier": IDENTIFIER}).encode()
NO_AGE = json.dumps({"patient_identifier": IDENTIFIER}).encode()
MAPPED = {
    "handler_data_points": {"age": 4},
    "handler_patient_identifier": Identifier(**IDENTIFIER),
}
NOTHING: dict[str, Any] = {"handler_data_points": {}, "handler_patient_identifier": None}


def _service(client: Client, store: Store, settings: Settings) -> IngestService:
    config = ConfigCache(store, refresh_seconds=3600)
    config.refresh()
    requests = RequestLog(client, settings.ui_base_url, PageTokens("secret"))
    return IngestService(client, config, settings, requests, store)


@pytest.mark.parametrize(
    ("enabled", "body", "test", "http", "initial", "carried"),
    [
        (True, COMPLETE, False, 202, "RECEIVED", NOTHING),
        (False, COMPLETE, False, 403, "REJECTED", MAPPED),
        (True, NO_AGE, True, 200, "RECEIVED", NOTHING),
        (True, b"{nope", False, 400, "REJECTED", NOTHING),
        (True, b"{nope", True, 200, "TEST", NOTHING),
    ],
    ids=["scheduled", "handler rejected", "test rejected", "door rejected", "test door rejected"],
)
async def test_only_a_handler_rejected_real_request_carries_its_mapping(
    temporal_client: Client,
    store: Store,
    settings: Settings,
    enabled: bool,
    body: bytes,
    test: bool,
    http: int,
    initial: str,
    carried: dict[str, Any],
) -> None:
    """The workflow input carries the handler's mapping only when the workflow will keep the
    handler's REJECTED without validating again; the run starts with the status the log shows."""
    hook = store_webhook(store, enabled=enabled)
    ingest = _service(temporal_client, store, settings)
    outcome = await ingest.accept(hook, body, "application/json", {}, test=test)
    assert outcome.http_status == http, outcome.body
    handle = temporal_client.get_workflow_handle(outcome.body["request_id"])
    try:
        description = await handle.describe()
        assert description.typed_search_attributes.get(temporal.SA_REQUEST_STATUS) == initial
        request, _ = await request_history.read(temporal_client, handle)
        assert request is not None
        assert {key: getattr(request, key) for key in carried} == carried
        assert request.door_rejected is (body == b"{nope")
    finally:
        await handle.terminate()


def test_rate_limit_counts_each_webhook_apart(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    limited = settings.model_copy(update={"careflow_rate_limit": "2/minute"})
    ingest = _service(temporal_client, store, limited)
    assert [ingest.retry_after("wh_a") for _ in range(2)] == [None, None]
    wait = ingest.retry_after("wh_a")
    assert wait is not None and 1 <= wait <= 60
    assert ingest.retry_after("wh_b") is None


def test_deleted_and_unknown_webhooks_are_not_found(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    live = store_webhook(store)
    deleted = live.model_copy(update={"id": new_webhook_id(), "deleted": True})
    store.configuration.insert_webhook(deleted)
    ingest = _service(temporal_client, store, settings)
    assert ingest.webhook(live.id) == live
    assert ingest.webhook(deleted.id) is None
    assert ingest.webhook("wh_nope") is None


async def test_a_webhook_created_elsewhere_is_found_before_the_next_refresh(
    temporal_client: Client, store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another API process created it after this one's last refresh (an hour apart here): the
    miss checks the store, so the sender is not answered 404 (scaled chaos run, issue 19)."""
    ingest = _service(temporal_client, store, settings)
    hook = store_webhook(store)
    assert ingest.webhook(hook.id) is None  # the cache has not seen it
    await asyncio.sleep(MISS_REFRESH_SECONDS)
    assert await ingest.webhook_checked(hook.id) == hook
    # Unknown ids check at most once per MISS_REFRESH_SECONDS, however many arrive at once.
    checks: list[int] = []
    revision = store.revision
    monkeypatch.setattr(store, "revision", lambda: checks.append(1) or revision())
    await asyncio.sleep(MISS_REFRESH_SECONDS)
    answers = await asyncio.gather(*(ingest.webhook_checked("wh_nope") for _ in range(50)))
    assert answers == [None] * 50
    assert len(checks) == 1


class _GatedClient:
    """The real client whose workflow starts wait for ``gate`` first (then really start)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.gate = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        await self.gate.wait()
        return await self._client.start_workflow(*args, **kwargs)


async def test_start_queue_full_once_as_many_wait_as_there_are_slots(
    temporal_client: Client, store: Store, settings: Settings
) -> None:
    """One slot taken and one request waiting: the next is told to come back (Retry-After in
    1..10 s) before anything is read; once the starts go through, both are SCHEDULED, and a
    request that finds no slot within the wait gets ``StartOverloadedError`` with its
    Retry-After, nothing started."""
    gated = _GatedClient(temporal_client)
    one_slot = settings.model_copy(
        update={"careflow_max_concurrent_starts": 1, "careflow_start_wait_seconds": 30.0}
    )
    hook = store_webhook(store)
    ingest = _service(gated, store, one_slot)  # type: ignore[arg-type]
    assert ingest.start_queue_full() is None
    first = asyncio.create_task(ingest.accept(hook, COMPLETE, "application/json", {}))
    second = asyncio.create_task(ingest.accept(hook, COMPLETE, "application/json", {}))
    while ingest.start_queue_full() is None:
        await asyncio.sleep(0.01)
    retry_after = ingest.start_queue_full()
    assert retry_after is not None and 1 <= retry_after <= 10
    gated.gate.set()
    outcomes = await asyncio.gather(first, second)
    assert [o.http_status for o in outcomes] == [202, 202]
    assert ingest.start_queue_full() is None

    hurried = _service(
        gated, store, one_slot.model_copy(update={"careflow_start_wait_seconds": 0.01})
    )  # type: ignore[arg-type]
    gated.gate.clear()
    held = asyncio.create_task(hurried.accept(hook, COMPLETE, "application/json", {}))
    await asyncio.sleep(0.05)
    with pytest.raises(StartOverloadedError) as refused:
        await hurried.accept(hook, COMPLETE, "application/json", {})
    assert 1 <= refused.value.retry_after <= 10
    gated.gate.set()
    assert (await held).http_status == 202
