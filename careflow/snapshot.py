"""The configuration at one revision, as validation reads it: pure data, no I/O.

``persistence.config_cache.ConfigCache`` builds these from the database; validation, the ingest
handler and the save-time checks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from careflow.models import CareFlowDefinition, IdentifierSystem, Webhook


@dataclass(frozen=True)
class ConfigSnapshot:
    """All configuration at one revision; read-only."""

    revision: int = -1
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    definitions: dict[str, CareFlowDefinition] = field(default_factory=dict)
    identifier_systems: dict[str, IdentifierSystem] = field(default_factory=dict)

    @property
    def system_uris(self) -> frozenset[str]:
        return frozenset(s.system for s in self.identifier_systems.values())
