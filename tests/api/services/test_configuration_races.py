"""The enable gate and the write it guards are one serialised transaction: a definition edit
cannot interleave with a webhook edit / enable of another thread or API replica (two stores and
two caches on one database here). Each race is forced, not hoped for: the webhook side pauses
inside its gate check until the definition side has finished or 1 s has passed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import api.services.webhooks as webhook_services
from api.services.configuration import ConfigurationService
from api.services.webhooks import WebhookService
from careflow.errors import ConflictError
from careflow.models import CareFlowDefinition, DataPointDefinition
from careflow.validation import enable_problems
from persistence.config_cache import ConfigCache
from persistence.store import Store
from tests.factories import store_webhook

AGE = DataPointDefinition(id="age", value_type="number")
NAME = DataPointDefinition(id="name", value_type="string")


def _replica(url: str) -> tuple[Store, ConfigurationService, WebhookService]:
    store = Store(url)
    config = ConfigCache(store, refresh_seconds=3600)
    return store, ConfigurationService(store, config), WebhookService(store, config)


def _race(
    monkeypatch: pytest.MonkeyPatch,
    webhook_side: Callable[[], Any],
    definition_side: Callable[[], Any],
) -> tuple[Any, Any]:
    """Run ``webhook_side`` in a thread, paused inside its enable-gate check while
    ``definition_side`` runs here; the outcome (result or exception) of each."""
    definition_done = threading.Event()
    in_gate = threading.Event()

    def paused_gate(*args: Any, **kwargs: Any) -> Any:
        problems = enable_problems(*args, **kwargs)
        in_gate.set()
        definition_done.wait(timeout=1.0)
        return problems

    monkeypatch.setattr(webhook_services, "enable_problems", paused_gate)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["webhook"] = webhook_side()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
            outcome["webhook"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert in_gate.wait(timeout=30)
    try:
        outcome["definition"] = definition_side()
    except Exception as exc:  # noqa: BLE001
        outcome["definition"] = exc
    definition_done.set()
    thread.join(timeout=60)
    assert not thread.is_alive()
    return outcome["webhook"], outcome["definition"]


def check_unpublish_races_patch(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PUT ?force=true unpublishing vs PATCH of the webhook's name: the webhook ends disabled."""
    store_a, definitions, _ = _replica(url)
    store_b, _, webhooks = _replica(url)
    try:
        hook = store_webhook(store_a, enabled=True)
        unpublished = CareFlowDefinition(id="intake", title="Intake", data_point_definitions=[AGE])
        patched, saved = _race(
            monkeypatch,
            lambda: webhooks.patch(hook.id, {"name": "renamed"}),
            lambda: definitions.save_care_flow_definition_gated(
                unpublished, replace=True, force=True
            ),
        )
        assert not isinstance(patched, Exception), patched
        assert not isinstance(saved, Exception), saved
        final = store_a.configuration.get_webhook(hook.id)
        assert final.name == "renamed"
        assert final.enabled is False, "an enabled webhook on an unpublished definition"
        assert [d.webhook_id for d in saved.disabled_webhooks] == [hook.id]
    finally:
        store_a.dispose()
        store_b.dispose()


def check_required_point_races_enable(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PUT adding a required data point (no force) vs POST enable: not both succeed."""
    store_a, definitions, _ = _replica(url)
    store_b, _, webhooks = _replica(url)
    try:
        hook = store_webhook(store_a, enabled=False)
        widened = CareFlowDefinition(
            id="intake", title="Intake", published=True, data_point_definitions=[AGE, NAME]
        )
        enabled, saved = _race(
            monkeypatch,
            lambda: webhooks.enable(hook.id),
            lambda: definitions.save_care_flow_definition(widened, replace=True),
        )
        assert not isinstance(enabled, Exception), enabled
        assert isinstance(saved, ConflictError), "both the enable and the edit succeeded"
        assert [(e.code, e.data_point_definition_id) for e in saved.errors] == [
            ("missing_data_point_mapping", "name")
        ]
        assert store_a.configuration.get_webhook(hook.id).enabled is True
        assert store_a.configuration.get_care_flow_definition("intake").data_point_definitions == [
            AGE
        ]
    finally:
        store_a.dispose()
        store_b.dispose()


def test_unpublish_races_patch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    check_unpublish_races_patch(store.url, monkeypatch)


def test_required_point_races_enable(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    check_required_point_races_enable(store.url, monkeypatch)


def test_value_type_change_of_a_mapped_point_is_breaking(store: Store) -> None:
    """``age`` number → string on an enabled webhook: 409 naming it; forced, it is disabled."""
    hook = store_webhook(store, enabled=True)
    service = ConfigurationService(store, ConfigCache(store, refresh_seconds=3600))
    retyped = CareFlowDefinition(
        id="intake",
        title="Intake",
        published=True,
        data_point_definitions=[DataPointDefinition(id="age", value_type="string")],
    )
    with pytest.raises(ConflictError) as refused:
        service.save_care_flow_definition(retyped, replace=True)
    [problem] = refused.value.errors
    assert (problem.code, problem.data_point_definition_id) == (
        "data_point_value_type_changed",
        "age",
    )
    assert "number" in problem.message and "string" in problem.message
    assert hook.id in problem.message
    saved = service.save_care_flow_definition_gated(retyped, replace=True, force=True)
    assert [d.webhook_id for d in saved.disabled_webhooks] == [hook.id]
    assert store.configuration.get_webhook(hook.id).enabled is False
