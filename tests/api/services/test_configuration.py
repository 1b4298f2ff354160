"""``api/services/configuration.py``: every write to identifier systems and care flow
definitions refreshes this process's configuration cache before it returns."""

from __future__ import annotations

from api.services.configuration import ConfigurationService
from careflow.models import CareFlowDefinition, IdentifierSystem
from persistence.config_cache import ConfigCache
from persistence.store import Store


def test_every_write_is_in_the_snapshot_at_once(store: Store) -> None:
    config = ConfigCache(store, refresh_seconds=3600)  # no refresh but the service's own
    config.refresh()
    service = ConfigurationService(store, config)

    service.create_identifier_system(IdentifierSystem(name="mrn", system="urn:mrn:a"))
    assert config.snapshot.identifier_systems["mrn"].system == "urn:mrn:a"
    service.update_identifier_system(IdentifierSystem(name="mrn", system="urn:mrn:b"))
    assert config.snapshot.identifier_systems["mrn"].system == "urn:mrn:b"
    service.delete_identifier_system("mrn")
    assert "mrn" not in config.snapshot.identifier_systems

    service.save_care_flow_definition(CareFlowDefinition(id="intake", title="v1"), replace=False)
    assert config.snapshot.definitions["intake"].title == "v1"
    replacement = CareFlowDefinition(id="intake", title="v2", published=True)
    service.save_care_flow_definition(replacement, replace=True)
    assert config.snapshot.definitions["intake"] == replacement
