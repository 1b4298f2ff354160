"""The chaos bench's sender against a real HTTP server on loopback that fails on purpose."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench import chaos_scenarios
from bench.chaos_scenarios import SYSTEM, Delivery, Sender, make_deliveries, send_burst
from tests.conftest import free_port

# webhook-id → attempts seen. A delivery whose id ends in "-fail2" gets two 503s (Retry-After 0)
# before its 202; one ending in "-bad" gets a 422 verdict.
SEEN: collections.Counter[str] = collections.Counter()


async def hook(request: Request) -> JSONResponse:
    delivery = request.headers["webhook-id"]
    SEEN[delivery] += 1
    if delivery.endswith("-bad"):
        return JSONResponse({"errors": [{"code": "invalid_payload"}]}, status_code=422)
    if delivery.endswith("-fail2") and SEEN[delivery] <= 2:
        body = {"errors": [{"code": "temporal_unavailable"}]}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "0"})
    return JSONResponse({"request_id": f"req_{delivery}"}, status_code=202)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    SEEN.clear()
    port = free_port()
    app = Starlette(routes=[Route("/hooks/h", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/hooks/h"
    finally:
        server.should_exit = True
        await task


def delivery(delivery_id: str, seq: int = 0) -> Delivery:
    return Delivery(seq, delivery_id, "MRN-0000", b'{"seq": 0}')


def test_make_deliveries_share_identifiers_round_robin() -> None:
    deliveries = make_deliveries(5, "chaos-1", pool=2)
    assert [d.delivery_id for d in deliveries] == [f"chaos-1-0000{i}" for i in range(5)]
    assert [d.mrn for d in deliveries] == ["MRN-0000", "MRN-0001"] * 2 + ["MRN-0000"]
    body = json.loads(deliveries[3].body)
    assert body["seq"] == 3
    assert body["patient"] == {"system": SYSTEM, "value": "MRN-0001", "name": {"family": "Chaos3"}}
    assert len(body["note"]) == 200
    assert all(d.outcome == "pending" and d.attempts == 0 for d in deliveries)


async def test_retries_5xx_with_the_same_webhook_id_until_acknowledged(url: str) -> None:
    async with httpx.AsyncClient() as http:
        sender = Sender([http], url, clock=asyncio.get_running_loop().time())
        d = delivery("d-fail2")
        await sender.deliver(d)
    assert (d.outcome, d.status_code, d.request_id, d.attempts) == (
        "acknowledged",
        202,
        "req_d-fail2",
        3,
    )
    assert SEEN["d-fail2"] == 3
    assert sender.answers == {"503:temporal_unavailable": 2, "202": 1}
    assert d.first_answer_s is not None and d.acknowledged_s is not None


async def test_a_4xx_verdict_is_final(url: str) -> None:
    async with httpx.AsyncClient() as http:
        sender = Sender([http], url, clock=0.0)
        d = delivery("d-bad")
        await sender.deliver(d)
    assert (d.outcome, d.status_code, d.attempts, d.request_id) == ("refused", 422, 1, None)
    assert sender.answers == {"422": 1}


async def test_gives_up_after_its_attempts_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chaos_scenarios, "MAX_ATTEMPTS", 2)
    async with httpx.AsyncClient() as http:
        sender = Sender([http], f"http://127.0.0.1:{free_port()}/hooks/h", clock=0.0)
        d = delivery("d-nobody")
        await sender.deliver(d)
    assert (d.outcome, d.attempts, d.first_answer_s) == ("gave_up", 2, None)
    assert sender.answers == {"connect_error": 2}


async def test_burst_delivers_everything_over_every_client(url: str) -> None:
    deliveries = [delivery(f"b-{i}", seq=i) for i in range(6)] + [delivery("b-fail2", seq=6)]
    async with httpx.AsyncClient() as one, httpx.AsyncClient() as two:
        sender = Sender([one, two], url, clock=0.0)
        await send_burst(sender, deliveries)
    assert all(d.outcome == "acknowledged" for d in deliveries)
    assert sender.answers == {"202": 7, "503:temporal_unavailable": 2}


async def test_lean_sender_round_robins_attempts_over_the_api_processes(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scaled topology's sender: attempt a of delivery seq goes to url (seq + a) mod n; a
    dead API process is a connection error and the resend goes to the next one. The lean
    client parses status, Retry-After and the JSON body like httpx."""
    monkeypatch.setattr(chaos_scenarios, "BACKOFF_BASE", 0.01)
    dead = f"http://127.0.0.1:{free_port()}/hooks/h"
    sender = Sender([], dead, clock=0.0, mirrors=[url], lean=True)
    first, second = delivery("r-0", seq=0), delivery("r-1-fail2", seq=1)
    await sender.deliver(first)  # attempt 0 → dead, attempt 1 → url
    await sender.deliver(second)  # url (503), dead, url (503), dead, url (202)
    assert (first.outcome, first.attempts, first.request_id) == ("acknowledged", 2, "req_r-0")
    assert (second.outcome, second.attempts) == ("acknowledged", 5)
    assert sender.answers == {"connect_error": 3, "503:temporal_unavailable": 2, "202": 2}


def test_topology_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.postgres import topology, topology_name

    monkeypatch.delenv("BENCH_TOPOLOGY", raising=False)
    assert (topology_name(), topology()) == ("single", (1, 1))
    monkeypatch.setenv("BENCH_TOPOLOGY", "scaled")
    assert (topology_name(), topology()) == ("scaled", (2, 2))
    monkeypatch.setenv("BENCH_APIS", "3")
    monkeypatch.setenv("BENCH_WORKERS", "4")
    assert topology() == (3, 4)
