"""Finding 5 of issue 15: senders that stop mid-body. A client that disconnects leaves one quiet
log line and no request; a body that stalls is answered 408 and logged REJECTED
``request_timeout``. Real uvicorn on a raw socket, real Temporal and worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest

from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, RunningWorker, serve_api
from tests.factories import JSON, TERMINAL, open_webhook


async def _send_partial(api: Api, hook_id: str, *, declared: int, sent: bytes) -> bytes:
    """Open a connection, send headers declaring ``declared`` body bytes and then ``sent``.

    Returns:
        The raw response, read until the server closes (b"" when it answers nothing).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", api.settings.careflow_api_port)
    head = (
        f"POST /hooks/{hook_id} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    writer.write(head + sent)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _request_ids(api: Api, hook_id: str) -> list[str]:
    answer = await api.admin("GET", "/v1/requests", params={"webhook_id": hook_id})
    return [item["request_id"] for item in answer.json()["items"]]


async def test_client_disconnect_mid_body_is_one_quiet_line_and_no_request(
    settings: Settings, store: Store, worker: RunningWorker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serve_api(settings, uvicorn_logs_to_root=True) as api:
        hook_id = await open_webhook(api)
        caplog.clear()
        reader, writer = await asyncio.open_connection("127.0.0.1", settings.careflow_api_port)
        writer.write(
            f"POST /hooks/{hook_id} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
            "\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"a": "Zelda Quartermaine'
        )
        await writer.drain()
        await asyncio.sleep(0.5)  # the handler is reading the body
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(1)
        records = list(caplog.records)
        # A later request is listed: visibility has caught up, so the first one would be too.
        later = await api.http.post(f"/hooks/{hook_id}", content=b'{"a": 1}', headers=JSON)
        assert later.status_code == 202
        await api.wait_status(later.json()["request_id"], TERMINAL)
        for _ in range(50):
            listed = await _request_ids(api, hook_id)
            if listed:
                break
            await asyncio.sleep(0.2)
    assert listed == [later.json()["request_id"]]
    disconnects = [r for r in records if "disconnected" in r.getMessage()]
    assert len(disconnects) == 1, [r.getMessage() for r in records]
    assert disconnects[0].levelno == logging.INFO
    assert not [r for r in records if r.levelno >= logging.WARNING or r.exc_info], [
        (r.name, r.getMessage()) for r in records
    ]
    assert "Zelda" not in caplog.text


async def test_body_that_stalls_is_408_and_logged_rejected(
    settings: Settings, store: Store, worker: RunningWorker
) -> None:
    quick = settings.model_copy(update={"careflow_body_read_seconds": 1.0})
    async with serve_api(quick, uvicorn_logs_to_root=True) as api:
        hook_id = await open_webhook(api)
        raw = await _send_partial(api, hook_id, declared=100, sent=b'{"a": ')
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), raw
        answer = json.loads(body)
        assert answer["status"] == "REJECTED"
        assert [e["code"] for e in answer["errors"]] == ["request_timeout"]
        detail = await api.wait_status(answer["request_id"], TERMINAL)
        assert detail["status"] == "REJECTED"
        assert [e["code"] for e in detail["errors"]] == ["request_timeout"]
        assert detail["payload"] is None
        retry = await api.admin("POST", f"/v1/requests/{answer['request_id']}/retry")
        assert retry.status_code == 409, retry.text
        # A body that arrives in time is unaffected.
        ok = await api.http.post(f"/hooks/{hook_id}", content=b'{"a": 1}', headers=JSON)
        assert ok.status_code == 202
