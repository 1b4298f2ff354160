"""The configuration cache on a real SQLite store: reloads on revision changes only."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from careflow.errors import TransientStoreError
from careflow.models import CareFlowDefinition, IdentifierSystem, Webhook
from careflow.settings import Settings
from persistence.config_cache import ConfigCache
from persistence.store import Store, new_webhook_id
from persistence.tables import identifier_systems
from tests.factories import unreachable_database

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def add_system(store: Store, name: str) -> None:
    store.configuration.create_identifier_system(IdentifierSystem(name=name, system=f"urn:{name}"))


def test_nothing_is_read_before_the_first_check(store: Store) -> None:
    cache = ConfigCache(store)
    assert cache.snapshot.revision == -1
    assert cache.snapshot.webhooks == {}


def test_the_first_get_loads_all_configuration(store: Store) -> None:
    add_system(store, "mrn")
    store.configuration.create_care_flow_definition(CareFlowDefinition(id="intake", title="I"))
    hooks = [
        store.configuration.insert_webhook(
            Webhook(
                id=new_webhook_id(),
                name="h",
                care_flow_definition_id="intake",
                deleted=deleted,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        for deleted in (False, True)
    ]
    snapshot = ConfigCache(store).get()
    assert snapshot.revision == store.revision() == 4
    assert snapshot.webhooks == {h.id: h for h in hooks}  # deleted ones too: they answer 403
    assert list(snapshot.definitions) == ["intake"]
    assert snapshot.identifier_systems == {"mrn": IdentifierSystem(name="mrn", system="urn:mrn")}
    assert snapshot.system_uris == {"urn:mrn"}


def test_a_write_is_seen_at_the_next_refresh(store: Store) -> None:
    cache = ConfigCache(store)
    before = cache.refresh()
    add_system(store, "mrn")
    after = cache.refresh()
    assert after.revision == before.revision + 1
    assert list(after.identifier_systems) == ["mrn"]
    assert before.identifier_systems == {}  # snapshots are never changed in place
    assert cache.snapshot is after


def test_an_unchanged_revision_reloads_nothing(store: Store) -> None:
    cache = ConfigCache(store)
    first = cache.refresh()
    with store.transaction() as conn:  # a change that does not bump the revision
        conn.execute(identifier_systems.insert().values(name="sneaky", system="urn:sneaky"))
    assert cache.refresh() is first
    assert "sneaky" not in cache.snapshot.identifier_systems
    with store.transaction() as conn:
        store.bump_revision(conn)
    assert "sneaky" in cache.refresh().identifier_systems


def test_get_within_refresh_seconds_does_not_check(store: Store, settings: Settings) -> None:
    cache = ConfigCache(store, refresh_seconds=60)
    first = cache.refresh()
    add_system(store, "mrn")
    assert cache.get() is first
    with unreachable_database(store, settings):
        assert cache.get() is first  # no database read at all


def test_get_checks_once_the_snapshot_is_stale(store: Store) -> None:
    cache = ConfigCache(store, refresh_seconds=0.2)
    cache.refresh()
    add_system(store, "mrn")
    time.sleep(0.25)
    assert list(cache.get().identifier_systems) == ["mrn"]


def test_a_check_without_changes_counts_as_fresh(store: Store, settings: Settings) -> None:
    cache = ConfigCache(store, refresh_seconds=0.5)
    cache.refresh()
    time.sleep(0.55)
    snapshot = cache.refresh()  # unchanged: restarts the clock
    with unreachable_database(store, settings):
        assert cache.get() is snapshot


def test_an_unreadable_database_raises_and_keeps_the_last_snapshot(
    store: Store, settings: Settings
) -> None:
    add_system(store, "mrn")
    cache = ConfigCache(store, refresh_seconds=0)
    kept = cache.get()
    with unreachable_database(store, settings):
        with pytest.raises(TransientStoreError):
            cache.refresh()
        with pytest.raises(TransientStoreError):
            cache.get()
        assert cache.snapshot is kept
    add_system(store, "ssn")
    assert sorted(cache.get().identifier_systems) == ["mrn", "ssn"]


def test_a_failed_check_does_not_count_as_fresh(store: Store, settings: Settings) -> None:
    cache = ConfigCache(store, refresh_seconds=0.5)
    cache.refresh()
    time.sleep(0.55)
    with unreachable_database(store, settings), pytest.raises(TransientStoreError):
        cache.get()
    add_system(store, "mrn")
    assert list(cache.get().identifier_systems) == ["mrn"]  # checked again at once


def test_the_first_get_reads_the_store_however_long_refresh_seconds_is(store: Store) -> None:
    # time.monotonic() may be small (a fresh boot): "never checked" must not look fresh.
    add_system(store, "mrn")
    cache = ConfigCache(store, refresh_seconds=time.monotonic() + 3600)
    snapshot = cache.get()
    assert snapshot.revision == store.revision()
    assert "mrn" in snapshot.identifier_systems
