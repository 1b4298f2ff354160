"""``validate_request`` with ActivityEnvironment on a real SQLite store: the verdict against the
configuration of now, never an exception for a bad payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.validation import ValidationActivities
from careflow.messages import ValidateRequestInput
from careflow.models import DataPointMapping, Identifier, RequestStatus
from persistence.config_cache import ConfigCache
from persistence.store import Store
from tests.factories import MRN_SYSTEM, store_webhook


def _input(webhook_id: str, body: bytes, **fields: bool) -> ValidateRequestInput:
    return ValidateRequestInput(
        request_id="r", webhook_id=webhook_id, body=body, media_type="application/json", **fields
    )


def test_validate_request_reads_the_current_configuration(store: Store) -> None:
    config = ConfigCache(store, refresh_seconds=3600)
    config.refresh()  # an empty snapshot: the activity must check the revision itself
    hook = store_webhook(store)
    activities = ValidationActivities(config)
    body = {"age": "7", "patient_identifier": {"system": MRN_SYSTEM, "value": " 12 "}}
    result = ActivityEnvironment().run(
        activities.validate_request, _input(hook.id, json.dumps(body).encode())
    )
    assert result.verdict == RequestStatus.SCHEDULED
    assert result.data_points == {"age": 7}
    assert result.patient_identifier == Identifier(system=MRN_SYSTEM, value="12")
    assert result.attempt == 1
    body["patient_identifier"] = {"system": "urn:unknown", "value": "1"}
    rejected = ActivityEnvironment().run(
        activities.validate_request, _input(hook.id, json.dumps(body).encode())
    )
    assert rejected.verdict == RequestStatus.REJECTED
    assert [e.code for e in rejected.errors] == ["unknown_identifier_system"]


def test_a_bad_payload_is_a_verdict_not_an_error(store: Store) -> None:
    hook = store_webhook(store)
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    result = ActivityEnvironment().run(activities.validate_request, _input(hook.id, b"{nope"))
    assert result.verdict == RequestStatus.REJECTED
    assert [e.code for e in result.errors] == ["invalid_json"]


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({}, RequestStatus.REJECTED),
        ({"ignore_enabled": True}, RequestStatus.SCHEDULED),
        ({"is_test": True}, RequestStatus.SCHEDULED),
    ],
    ids=["checked", "accepted before it was disabled", "test"],
)
def test_a_disabled_webhook_counts_only_when_asked(
    store: Store, fields: dict[str, bool], verdict: RequestStatus
) -> None:
    hook = store_webhook(store, enabled=False)
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    body = json.dumps({"age": 3}).encode()
    result = ActivityEnvironment().run(activities.validate_request, _input(hook.id, body, **fields))
    assert result.verdict == verdict, result.errors
    if verdict == RequestStatus.REJECTED:
        assert [e.code for e in result.errors] == ["webhook_disabled"]


def test_an_unreadable_configuration_is_retryable(tmp_path: Path) -> None:
    unreadable = Store(f"sqlite:///{tmp_path}")  # a directory: the database cannot be opened
    try:
        activities = ValidationActivities(ConfigCache(unreadable, refresh_seconds=0))
        with pytest.raises(ApplicationError) as raised:
            ActivityEnvironment().run(activities.validate_request, _input("wh_1", b"{}"))
        assert raised.value.type == "store_unavailable"
        assert not raised.value.non_retryable
    finally:
        unreadable.dispose()


def test_a_defect_in_validation_fails_for_good_without_its_message(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in for a bug in the pure validation code whose message quotes the payload.
    def broken(*_args: object) -> None:
        raise ValueError("cannot map MRN-SECRET-77")

    monkeypatch.setattr("careflow.evaluation.validate", broken)
    hook = store_webhook(store)
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(activities.validate_request, _input(hook.id, b'{"age": 1}'))
    assert failed.value.type == "internal_error" and failed.value.non_retryable
    assert "MRN-SECRET-77" not in failed.value.message and failed.value.__cause__ is None


def _heavy_hook(store: Store, path: str) -> str:
    """``store_webhook``'s configuration with ``age`` mapped by ``path`` (e.g. ``$..*``)."""
    hook = store_webhook(store)
    mappings = [DataPointMapping(data_point_definition_id="age", path=path)]
    return store.configuration.save_webhook(
        hook.model_copy(update={"data_point_mappings": mappings})
    ).id


def test_a_large_body_is_evaluated_in_a_worker_process_within_a_budget(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a mapping such as ``$..*`` on a body of many values is bounded in the worker
    too: past the budget the verdict is REJECTED ``mapping_too_costly`` (retryable once the
    mapping is fixed), and the activity's thread is never the one doing the work."""
    import activities.validation as module
    from careflow.evaluation import EvaluationJob
    from careflow.snapshot import ConfigSnapshot as Snap

    hook_id = _heavy_hook(store, "$..*")
    body = ("[" + ",".join(["7"] * 90_000) + "]").encode()  # 176 KiB, far over INLINE_BYTES
    over_cap = ("[" + ",".join(["7"] * 100_000) + "]").encode()
    default = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    refused = ActivityEnvironment().run(default.validate_request, _input(hook_id, over_cap))
    assert [e.code for e in refused.errors] == ["too_many_nodes"]
    monkeypatch.setattr(module, "BUDGET_SECONDS", 0.05)
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    for _ in range(200):  # until the pool's process is up (start-up counts against the budget)
        if not activities._pool.evaluate_blocking(
            EvaluationJob(b"[1]", "application/json", Snap(), "w")
        ).queued_too_long:
            break
    for _ in range(20):  # a loaded machine may keep the job queued past 50 ms: Temporal retries
        try:
            result = ActivityEnvironment().run(activities.validate_request, _input(hook_id, body))
            break
        except ApplicationError as busy:
            assert busy.type == "evaluation_busy" and not busy.non_retryable
    assert result.verdict == RequestStatus.REJECTED
    assert [e.code for e in result.errors] == ["mapping_too_costly"]
    small = json.dumps([7]).encode()  # inline: evaluated in the activity's thread
    inline = ActivityEnvironment().run(activities.validate_request, _input(hook_id, small))
    assert inline.verdict == RequestStatus.SCHEDULED
    assert inline.data_points == {"age": 7}


def test_a_large_body_that_waited_too_long_for_a_process_is_retried(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import activities.validation as module
    from careflow.evaluation import Evaluation

    hook_id = _heavy_hook(store, "$.a")
    activities = ValidationActivities(ConfigCache(store, refresh_seconds=0))
    monkeypatch.setattr(
        module.EvaluationPool, "evaluate_blocking", lambda *_: Evaluation(queued_too_long=True)
    )
    body = ("[" + ",".join(["7"] * 10_000) + "]").encode()
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(activities.validate_request, _input(hook_id, body))
    assert failed.value.type == "evaluation_busy" and not failed.value.non_retryable
