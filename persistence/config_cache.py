"""A per-process cache of the configuration, refreshed when the store's revision changes.

Ingest answers from this cache without touching the database; every process checks the
revision at least every ``config_refresh_seconds`` (1 s by default), so a change made through
the API reaches every API replica and worker within 2 s (contract §1).
"""

from __future__ import annotations

import math
import threading
import time

from careflow.snapshot import ConfigSnapshot
from persistence.store import Store


class ConfigCache:
    """Holds the newest ``ConfigSnapshot``; thread-safe.

    Args:
        store: where the configuration lives.
        refresh_seconds: how old a snapshot may get before ``get`` checks the revision.
    """

    def __init__(self, store: Store, refresh_seconds: float = 1.0) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._snapshot = ConfigSnapshot()
        self._checked_at = -math.inf  # never checked: the first ``get`` reads the store

    @property
    def snapshot(self) -> ConfigSnapshot:
        """The current snapshot, without any I/O."""
        return self._snapshot

    def age_seconds(self) -> float:
        """Seconds since the revision was last checked (``inf`` before the first check)."""
        return time.monotonic() - self._checked_at

    def get(self) -> ConfigSnapshot:
        """The current snapshot, checking the store's revision when it is stale."""
        if time.monotonic() - self._checked_at >= self._refresh_seconds:
            self.refresh()
        return self._snapshot

    def refresh(self) -> ConfigSnapshot:
        """Check the revision now and reload everything when it changed.

        Raises:
            TransientStoreError: when the database cannot be read.
        """
        revision = self._store.revision()
        if revision == self._snapshot.revision:
            self._checked_at = time.monotonic()
            return self._snapshot
        with self._lock:
            if revision != self._snapshot.revision:
                self._snapshot = ConfigSnapshot(
                    revision=revision,
                    webhooks={
                        w.id: w
                        for w in self._store.configuration.list_webhooks(include_deleted=True)
                    },
                    definitions={
                        d.id: d for d in self._store.configuration.list_care_flow_definitions()
                    },
                    identifier_systems={
                        s.name: s for s in self._store.configuration.list_identifier_systems()
                    },
                )
            self._checked_at = time.monotonic()
            return self._snapshot
