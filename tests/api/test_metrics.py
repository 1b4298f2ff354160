"""``GET /metrics`` of the API: counters and histograms move per outcome, labels stay bounded,
no PHI; ``CAREFLOW_METRICS_PORT`` moves the endpoint."""

from __future__ import annotations

import asyncio
import logging
import math

import httpx
import pytest

from careflow import logs
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, free_port, serve_api
from tests.factories import ehr_webhook, open_webhook
from tests.observability import EHR_REQUEST, assert_no_phi, metric_labels, value


async def scrape(api: Api) -> str:
    answer = await api.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def test_counters_and_histograms_move_per_outcome(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    hook_id = await ehr_webhook(api)
    caplog.handler.addFilter(logs.RequestIdFilter())
    caplog.set_level(logging.INFO, logger="careflow.requests")
    before = await scrape(api)

    scheduled = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST)
    assert scheduled.status_code == 202
    rejected = await api.http.post(f"/hooks/{hook_id}", json={"patient": EHR_REQUEST["patient"]})
    assert rejected.status_code == 422
    broken = await api.http.post(
        f"/hooks/{hook_id}",
        content=b'{"patient": "Zelda',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400
    headers = {"webhook-id": "delivery-1"}
    first = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST, headers=headers)
    again = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["duplicate"] is True
    tested = await api.http.post(f"/hooks/{hook_id}/test", json=EHR_REQUEST)
    assert tested.json()["verdict"] == "SCHEDULED"
    unknown = await api.http.post("/hooks/no-such-hook-Zelda", json=EHR_REQUEST)
    assert unknown.status_code == 404

    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "careflow_webhook_requests_total"
    assert delta(requests, webhook_id=hook_id, outcome="SCHEDULED") == 2
    assert delta(requests, webhook_id=hook_id, outcome="REJECTED") == 2
    assert delta(requests, webhook_id=hook_id, outcome="duplicate") == 1
    assert delta(requests, webhook_id="unknown", outcome="webhook_not_found") == 1
    rejections = "careflow_webhook_rejections_total"
    assert delta(rejections, webhook_id=hook_id, code="missing_required_data_point") == 1
    assert delta(rejections, webhook_id=hook_id, code="invalid_json") == 1
    assert (
        delta("careflow_webhook_test_requests_total", webhook_id=hook_id, verdict="SCHEDULED") == 1
    )
    answers = "careflow_webhook_answer_seconds_count"
    for outcome, count in (("SCHEDULED", 2), ("REJECTED", 2), ("duplicate", 1), ("TEST", 1)):
        assert delta(answers, outcome=outcome) == count, outcome
    assert delta(answers, outcome="webhook_not_found") == 1
    # 202 ×2 (one is the duplicate's first delivery), 422, 400 and the test: five starts (the
    # duplicate's start is refused by Temporal and not timed).
    assert delta("careflow_workflow_start_seconds_count") == 5
    assert value(after, "careflow_start_slots_in_use") == 0
    age = value(after, "careflow_config_cache_age_seconds")
    assert 0 <= age < 60 and math.isfinite(age)
    # Bounded labels: no request id anywhere, and no value the sender sent.
    for answer in (scheduled, rejected, broken, first, tested):
        assert answer.json()["request_id"] not in after
    assert "no-such-hook" not in after
    assert_no_phi(metric_labels(after))

    # One structured outcome line per request, with its request id.
    lines = [r for r in caplog.records if r.name == "careflow.requests"]
    assert len(lines) == 7
    answers_in_order = (scheduled, rejected, broken, first, again, tested)
    for line, answer in zip(lines, answers_in_order, strict=False):
        assert line.request_id == answer.json()["request_id"]  # type: ignore[attr-defined]
        assert line.webhook_id == hook_id  # type: ignore[attr-defined]
        assert line.http_status == answer.status_code  # type: ignore[attr-defined]
    assert [line.status for line in lines] == [  # type: ignore[attr-defined]
        "SCHEDULED",
        "REJECTED",
        "REJECTED",
        "SCHEDULED",
        "duplicate",
        "TEST",
        "webhook_not_found",
    ]
    assert lines[1].codes == ["missing_required_data_point"]  # type: ignore[attr-defined]
    assert lines[2].codes == ["invalid_json"]  # type: ignore[attr-defined]
    assert lines[6].request_id is None  # type: ignore[attr-defined]
    assert_no_phi("\n".join(caplog.handler.format(r) for r in lines))


async def test_rate_limit_and_backpressure_are_counted(settings: Settings, store: Store) -> None:
    tight = settings.model_copy(
        update={
            "careflow_rate_limit": "30/minute",
            "careflow_max_concurrent_starts": 1,
            "careflow_start_wait_seconds": 0.001,
        }
    )
    async with serve_api(tight) as api:
        hook_id = await open_webhook(api)
        answers = await asyncio.gather(
            *(api.http.post(f"/hooks/{hook_id}", json={"a": i}) for i in range(40))
        )
        codes = [a.status_code for a in answers]
        text = await scrape(api)
    assert codes.count(429) == 10
    requests = "careflow_webhook_requests_total"
    assert value(text, requests, webhook_id=hook_id, outcome="rate_limited") == 10
    overloaded = codes.count(503)
    assert overloaded > 0
    assert value(text, requests, webhook_id=hook_id, outcome="temporal_unavailable") == overloaded
    assert value(text, "careflow_start_overloaded_total") == overloaded
    assert value(text, "careflow_workflow_start_failures_total", reason="overloaded") == overloaded
    assert value(text, "careflow_start_slot_waits_total") >= overloaded
    assert value(text, requests, webhook_id=hook_id, outcome="SCHEDULED") == codes.count(202)


async def test_unreachable_temporal_counts_start_failures(settings: Settings, store: Store) -> None:
    away = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with serve_api(away) as api:
        hook_id = await open_webhook(api)
        answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
        assert answer.status_code == 503
        text = await scrape(api)
    assert value(text, "careflow_workflow_start_failures_total", reason="connect") == 1
    assert value(text, "careflow_webhook_requests_total", outcome="temporal_unavailable") == 1


async def test_metrics_port_setting_moves_the_endpoint(settings: Settings, store: Store) -> None:
    port = free_port()
    moved = settings.model_copy(update={"careflow_metrics_port": port})
    async with serve_api(moved) as api:
        await open_webhook(api)
        on_api = await api.http.get("/metrics")
        assert on_api.status_code == 404
        assert on_api.json()["errors"][0]["code"] == "not_found"
        async with httpx.AsyncClient() as http:
            apart = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert apart.status_code == 200
        assert "# TYPE careflow_webhook_requests_total counter" in apart.text
