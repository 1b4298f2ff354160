"""Backend selection per definition."""

from __future__ import annotations

import pytest

from backends.base import BackendRefusedError
from backends.builtin import BuiltinBackend
from backends.registry import BackendRegistry
from careflow.models import AwellBackendConfig, CareFlowDefinition, TemporalBackendConfig
from persistence.store import Store


def _save(store: Store, definition_id: str, backend: object) -> None:
    store.configuration.create_care_flow_definition(
        CareFlowDefinition(id=definition_id, title=definition_id, backend=backend)
    )


def test_each_definition_gets_its_backends_kind(store: Store) -> None:
    builtin = BuiltinBackend(store)
    temporal = BuiltinBackend(store)  # any object of the protocol stands for the kind here
    registry = BackendRegistry(store, builtin, {"temporal": temporal})
    _save(store, "plain", {"kind": "builtin"})
    _save(store, "wf", TemporalBackendConfig(kind="temporal", workflow_type="W", task_queue="q"))
    _save(store, "pathway", AwellBackendConfig(kind="awell", pathway_definition_id="pd"))
    assert registry.for_definition("plain") is builtin
    assert registry.for_definition("wf") is temporal
    assert registry.for_definition("missing") is builtin  # which then refuses it
    assert registry.for_definition(None) is builtin
    with pytest.raises(BackendRefusedError) as refused:
        registry.for_definition("pathway")
    assert refused.value.code == "care_flow_backend_not_configured"
    assert "awell" in refused.value.message
    assert BackendRegistry.only(temporal).for_definition("pathway") is temporal
