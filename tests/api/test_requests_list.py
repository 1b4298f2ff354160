"""The request list: filters, pagination with an opaque token, one row per request."""

from __future__ import annotations

from tests.api.test_ingest_hardening import open_webhook
from tests.conftest import Api, RunningWorker


async def test_pagination_and_filters(api: Api, worker: RunningWorker) -> None:
    hook_id = await open_webhook(api)
    ids = []
    for i in range(5):
        answer = await api.http.post(f"/hooks/{hook_id}", json={"a": i})
        ids.append(answer.json()["request_id"])
    for request_id in ids:
        await api.wait_status(request_id, {"SUCCESS"})
    seen: list[str] = []
    closed: list[str] = []
    token = None
    pages = 0
    while True:
        query = f"/v1/requests?webhook_id={hook_id}&status=SUCCESS&limit=2"
        answer = await api.admin("GET", query + (f"&page_token={token}" if token else ""))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.extend(r["request_id"] for r in body["items"])
        closed.extend(r["updated_at"] for r in body["items"])
        pages += 1
        token = body["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids) and pages >= 3
    assert closed == sorted(closed, reverse=True)  # most recently closed first
    none = await api.admin("GET", f"/v1/requests?webhook_id={hook_id}&status=FAILED")
    assert none.json()["items"] == []
    bad = await api.admin("GET", "/v1/requests?page_token=AAAAAAAAAAAAAAAAAAAA")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "invalid_page_token"
    quoted = await api.admin("GET", "/v1/requests?webhook_id=x' OR 'a'='a")
    assert quoted.status_code == 400
    too_many = await api.admin("GET", "/v1/requests?limit=201")
    assert too_many.status_code == 422
