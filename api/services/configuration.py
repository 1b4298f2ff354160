"""Identifier systems and care flow definitions: every write refreshes the configuration cache.

The API's services are the one layer that writes configuration, so they are the one place that
refreshes this process's ``ConfigCache`` after a write (other processes see the new revision
within ``config_refresh_seconds``). Routes and web pages call these, never the repository.
"""

from __future__ import annotations

from careflow.models import CareFlowDefinition, IdentifierSystem
from persistence.config_cache import ConfigCache
from persistence.store import Store


class ConfigurationService:
    """Args: store: the store; config: the process's configuration cache (refreshed on writes)."""

    def __init__(self, store: Store, config: ConfigCache) -> None:
        self._repository = store.configuration
        self._config = config

    def create_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        """Raises: ConflictError (409) when the name or system URI is taken."""
        created = self._repository.create_identifier_system(item)
        self._config.refresh()
        return created

    def update_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        """Raises: NotFoundError (404); ConflictError (409) when the system URI is taken."""
        updated = self._repository.update_identifier_system(item)
        self._config.refresh()
        return updated

    def delete_identifier_system(self, name: str) -> None:
        """Raises: NotFoundError (404); ConflictError (409) while a webhook uses it."""
        self._repository.delete_identifier_system(name)
        self._config.refresh()

    def save_care_flow_definition(
        self, item: CareFlowDefinition, *, replace: bool
    ) -> CareFlowDefinition:
        """Create (``replace=False``) or replace a care flow definition.

        Raises:
            ConflictError: creating an id that exists (409).
            NotFoundError: replacing an id that does not exist (404).
        """
        if replace:
            saved = self._repository.update_care_flow_definition(item)
        else:
            saved = self._repository.create_care_flow_definition(item)
        self._config.refresh()
        return saved
