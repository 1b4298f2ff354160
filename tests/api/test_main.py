"""``api.main``: the assembled app — every router mounted, the background config refresh."""

from __future__ import annotations

import asyncio

from persistence.store import Store
from tests.conftest import Api
from tests.factories import store_webhook


async def test_every_router_is_mounted(api: Api) -> None:
    paths = set((await api.http.get("/openapi.json")).json()["paths"])
    assert {
        "/hooks/{webhook_id}",
        "/hooks/{webhook_id}/test",
        "/v1/identifier-systems",
        "/v1/care-flow-definitions",
        "/v1/webhooks",
        "/v1/requests",
        "/healthz",
        "/readyz",
    } <= paths
    assert (await api.http.get("/ui/login")).status_code == 200


async def test_a_write_by_another_process_reaches_ingest(api: Api, store: Store) -> None:
    # ``store`` is a second connection to the same database, as another API replica's would be;
    # ingest answers from the cache, so only the background refresh can make the webhook known.
    hook = store_webhook(store)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        answer = await api.http.post(f"/hooks/{hook.id}", json={"age": 1})
        if answer.status_code != 404:
            break
        assert asyncio.get_running_loop().time() < deadline, "the refresh never ran"
        await asyncio.sleep(0.1)
    assert answer.status_code == 202
