"""``infra.evaluation_pool``: evaluations in worker processes, each within a time budget."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

from careflow.evaluation import EvaluationJob
from careflow.models import CareFlowDefinition, DataPointDefinition, DataPointMapping, Webhook
from careflow.snapshot import ConfigSnapshot
from infra.evaluation_pool import EvaluationPool

HEAVY = ("[" + ",".join(["0"] * 90_000) + "]").encode()


def _job(body: bytes, paths: int = 1) -> EvaluationJob:
    """A webhook with ``paths`` data points, each mapped by ``$..*``."""
    now = datetime.now(UTC)
    hook = Webhook(
        id="w" * 22,
        name="heavy",
        care_flow_definition_id="d",
        enabled=True,
        data_point_mappings=[
            DataPointMapping(data_point_definition_id=f"x{i}", path="$..*") for i in range(paths)
        ],
        created_at=now,
        updated_at=now,
    )
    definition = CareFlowDefinition(
        id="d",
        title="d",
        published=True,
        data_point_definitions=[
            DataPointDefinition(id=f"x{i}", value_type="json", optional=True) for i in range(paths)
        ],
    )
    snapshot = ConfigSnapshot(webhooks={hook.id: hook}, definitions={"d": definition})
    return EvaluationJob(body, "application/json", snapshot, hook.id, "$[0]", keep_parsed=False)


async def warm(pool: EvaluationPool) -> None:
    """Wait until the pool's process is up (its start-up counts against a job's budget)."""
    for _ in range(100):
        if (await pool.evaluate(_job(b"[1]"))).finished:
            return
    raise AssertionError("the evaluation process did not start")


async def test_within_budget_gives_the_verdict_and_delivery_id() -> None:
    pool = EvaluationPool(1, 30)
    try:
        evaluation = await pool.evaluate(_job(b"[7, 8]"))
    finally:
        pool.shutdown()
    assert evaluation.finished and evaluation.result is not None
    assert evaluation.result.data_points == {"x0": [7, 8]}
    assert evaluation.delivery_id == "7"


async def test_past_the_budget_returns_unfinished_with_the_steps_done() -> None:
    pool = EvaluationPool(1, 1.0)
    try:
        await warm(pool)
        # 20 paths visiting 90,000 values each: many seconds on any machine.
        evaluation = await pool.evaluate(_job(HEAVY, paths=20))
        assert not evaluation.finished and not evaluation.queued_too_long
        assert evaluation.delivery_id == "0"  # found before the budget ran out
        # The process is free again at once: the next job is not queued behind the first.
        again = await pool.evaluate(_job(b"[1]"))
        assert again.finished
    finally:
        pool.shutdown()


async def test_time_spent_queued_counts() -> None:
    pool = EvaluationPool(1, 1.0)
    try:
        await warm(pool)
        heavy, queued = await asyncio.gather(
            pool.evaluate(_job(HEAVY, paths=20)), pool.evaluate(_job(b"[1]"))
        )
        assert not heavy.finished
        assert queued.queued_too_long and not queued.finished
    finally:
        pool.shutdown()


def test_a_dead_worker_process_gives_unfinished_then_a_fresh_pool() -> None:
    pool = EvaluationPool(1, 30)
    try:
        assert pool.evaluate_blocking(_job(b"[1]")).finished
        executor, _ = pool._pool()
        for pid in list(executor._processes):  # the OOM killer, say
            os.kill(pid, signal.SIGKILL)
        assert not pool.evaluate_blocking(_job(b"[1]")).finished
        assert pool.evaluate_blocking(_job(b"[1]")).finished
    finally:
        pool.shutdown()
