"""Identifier systems, care flow definitions and webhooks on a real SQLite store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from careflow.errors import ConflictError, NotFoundError
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    Identifier,
    IdentifierSystem,
    PatientIdentifierMapping,
    SignatureConfig,
    ValueRange,
    Webhook,
)
from persistence.store import Store, new_webhook_id

SYSTEM = "https://example-hospital.org/mrn"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def system(name: str = "mrn", uri: str = SYSTEM, description: str = "") -> IdentifierSystem:
    return IdentifierSystem(name=name, system=uri, description=description)


def definition(definition_id: str = "intake", *, published: bool = True) -> CareFlowDefinition:
    return CareFlowDefinition(
        id=definition_id,
        title="Intake",
        published=published,
        data_point_definitions=[
            DataPointDefinition(
                id="age",
                value_type="number",
                range=ValueRange(min=0, max=130),
                possible_values=[1, 2.5],
            ),
            DataPointDefinition(id="tags", value_type="strings_array", optional=True),
        ],
    )


def webhook(*, created_at: datetime = T0, **overrides: object) -> Webhook:
    fields: dict[str, object] = {
        "id": new_webhook_id(),
        "name": "Hook",
        "care_flow_definition_id": "intake",
        "data_point_mappings": [DataPointMapping(data_point_definition_id="age", path="$.age")],
        "created_at": created_at,
        "updated_at": created_at,
    }
    return Webhook.model_validate({**fields, **overrides})


def code_of(raised: pytest.ExceptionInfo[Exception]) -> str:
    assert isinstance(raised.value, ConflictError | NotFoundError)
    return raised.value.errors[0].code


# --- identifier systems -------------------------------------------------------------------------


def test_identifier_systems_are_stored_and_listed_by_name(store: Store) -> None:
    repo = store.configuration
    repo.create_identifier_system(system("ssn", "urn:ssn", "Social security"))
    repo.create_identifier_system(system("mrn"))
    assert [s.name for s in repo.list_identifier_systems()] == ["mrn", "ssn"]
    assert repo.get_identifier_system("ssn") == system("ssn", "urn:ssn", "Social security")


@pytest.mark.parametrize(
    "duplicate", [system("mrn", "urn:other"), system("other", SYSTEM)], ids=["name", "uri"]
)
def test_a_taken_name_or_uri_is_a_conflict(store: Store, duplicate: IdentifierSystem) -> None:
    store.configuration.create_identifier_system(system())
    with pytest.raises(ConflictError) as raised:
        store.configuration.create_identifier_system(duplicate)
    assert code_of(raised) == "identifier_system_exists"
    assert store.configuration.list_identifier_systems() == [system()]


def test_an_unknown_identifier_system_is_not_found(store: Store) -> None:
    for call in (
        lambda: store.configuration.get_identifier_system("nope"),
        lambda: store.configuration.update_identifier_system(system("nope")),
        lambda: store.configuration.delete_identifier_system("nope"),
    ):
        with pytest.raises(NotFoundError) as raised:
            call()
        assert code_of(raised) == "identifier_system_not_found"


def test_an_unused_system_can_change_its_uri_and_be_deleted(store: Store) -> None:
    repo = store.configuration
    repo.create_identifier_system(system())
    repo.update_identifier_system(system(uri="urn:new", description="moved"))
    assert repo.get_identifier_system("mrn") == system(uri="urn:new", description="moved")
    repo.delete_identifier_system("mrn")
    assert repo.list_identifier_systems() == []


def test_changing_to_a_uri_another_system_has_is_a_conflict(store: Store) -> None:
    store.configuration.create_identifier_system(system())
    store.configuration.create_identifier_system(system("ssn", "urn:ssn"))
    with pytest.raises(ConflictError) as raised:
        store.configuration.update_identifier_system(system("ssn", SYSTEM))
    assert code_of(raised) == "identifier_system_exists"
    assert store.configuration.get_identifier_system("ssn").system == "urn:ssn"


def _used_by_patient(store: Store) -> None:
    store.patients.create_patient(Identifier(system=SYSTEM, value="1"), {}, "req_1")


def _used_by_webhook(store: Store) -> None:
    identifier = PatientIdentifierMapping(system=SYSTEM, value_path="$.mrn")
    store.configuration.insert_webhook(webhook(patient_identifier=identifier))


@pytest.mark.parametrize("use", [_used_by_patient, _used_by_webhook], ids=["patient", "webhook"])
def test_a_system_in_use_keeps_its_uri_and_cannot_be_deleted(store: Store, use: object) -> None:
    repo = store.configuration
    repo.create_identifier_system(system())
    use(store)  # type: ignore[operator]
    with pytest.raises(ConflictError) as raised:
        repo.update_identifier_system(system(uri="urn:new"))
    assert code_of(raised) == "identifier_system_in_use"
    with pytest.raises(ConflictError) as raised:
        repo.delete_identifier_system("mrn")
    assert code_of(raised) == "identifier_system_in_use"
    repo.update_identifier_system(system(description="only the description"))
    assert repo.get_identifier_system("mrn") == system(description="only the description")


def test_a_deleted_webhook_does_not_keep_a_system_in_use(store: Store) -> None:
    store.configuration.create_identifier_system(system())
    identifier = PatientIdentifierMapping(system=SYSTEM, value_path="$.mrn")
    store.configuration.insert_webhook(webhook(patient_identifier=identifier, deleted=True))
    store.configuration.delete_identifier_system("mrn")
    assert store.configuration.list_identifier_systems() == []


def test_a_webhook_reading_the_system_from_the_payload_does_not_use_it(store: Store) -> None:
    store.configuration.create_identifier_system(system())
    identifier = PatientIdentifierMapping(system_path="$.sys", value_path="$.mrn")
    store.configuration.insert_webhook(webhook(patient_identifier=identifier))
    store.configuration.delete_identifier_system("mrn")
    assert store.configuration.list_identifier_systems() == []


# --- care flow definitions ----------------------------------------------------------------------


def test_definitions_round_trip_with_their_data_points(store: Store) -> None:
    repo = store.configuration
    repo.create_care_flow_definition(definition("visit"))
    repo.create_care_flow_definition(definition("intake", published=False))
    assert repo.get_care_flow_definition("visit") == definition("visit")
    assert [d.id for d in repo.list_care_flow_definitions()] == ["intake", "visit"]


def test_a_definition_id_is_created_once(store: Store) -> None:
    store.configuration.create_care_flow_definition(definition())
    with pytest.raises(ConflictError) as raised:
        store.configuration.create_care_flow_definition(definition(published=False))
    assert code_of(raised) == "care_flow_definition_exists"
    assert store.configuration.get_care_flow_definition("intake").published is True


def test_updating_a_definition_replaces_it(store: Store) -> None:
    store.configuration.create_care_flow_definition(definition())
    replacement = CareFlowDefinition(id="intake", title="New", published=False)
    store.configuration.update_care_flow_definition(replacement)
    assert store.configuration.get_care_flow_definition("intake") == replacement


def test_an_unknown_definition_is_not_found_and_not_created_by_an_update(store: Store) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.configuration.get_care_flow_definition("intake")
    assert code_of(raised) == "care_flow_definition_not_found"
    revision = store.revision()
    with pytest.raises(NotFoundError):
        store.configuration.update_care_flow_definition(definition())
    assert store.configuration.list_care_flow_definitions() == []
    assert store.revision() == revision


# --- webhooks -----------------------------------------------------------------------------------


def test_new_webhook_ids_are_unguessable_and_url_safe() -> None:
    ids = {new_webhook_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"wh_[A-Za-z0-9_-]{27}", i) for i in ids)


def test_a_webhook_round_trips_with_its_configuration_and_secret(store: Store) -> None:
    hook = webhook(
        enabled=True,
        patient_identifier=PatientIdentifierMapping(system=SYSTEM, value_path="$.mrn"),
        signature=SignatureConfig(scheme="hmac", secret="s3cret", header="X-Sig"),
        default_region="NL",
        delivery_id_path="$.id",
    )
    store.configuration.insert_webhook(hook)
    stored = store.configuration.get_webhook(hook.id)
    assert stored == hook
    assert stored.created_at.tzinfo is not None


def test_webhooks_are_listed_oldest_first_and_deleted_ones_hidden(store: Store) -> None:
    repo = store.configuration
    newer = repo.insert_webhook(webhook(created_at=T0 + timedelta(minutes=1)))
    older = repo.insert_webhook(webhook(created_at=T0))
    gone = repo.insert_webhook(webhook(created_at=T0 + timedelta(minutes=2), deleted=True))
    assert [w.id for w in repo.list_webhooks()] == [older.id, newer.id]
    assert [w.id for w in repo.list_webhooks(include_deleted=True)] == [older.id, newer.id, gone.id]
    with pytest.raises(NotFoundError) as raised:
        repo.get_webhook(gone.id)
    assert code_of(raised) == "webhook_not_found"
    assert repo.get_webhook(gone.id, include_deleted=True).deleted is True


def test_saving_a_webhook_stores_the_change_and_a_new_updated_at(store: Store) -> None:
    hook = store.configuration.insert_webhook(webhook())
    changed = hook.model_copy(
        update={"name": "Renamed", "enabled": True, "care_flow_definition_id": "visit"}
    )
    saved = store.configuration.save_webhook(changed)
    assert saved.updated_at > hook.updated_at
    stored = store.configuration.get_webhook(hook.id)
    assert stored == saved
    assert (stored.name, stored.enabled, stored.care_flow_definition_id) == (
        "Renamed",
        True,
        "visit",
    )
    assert stored.created_at == hook.created_at


# --- the revision -------------------------------------------------------------------------------


def test_every_configuration_write_bumps_the_revision_once(store: Store) -> None:
    repo = store.configuration
    hook = webhook()
    writes = [
        lambda: repo.create_identifier_system(system()),
        lambda: repo.update_identifier_system(system(description="d")),
        lambda: repo.delete_identifier_system("mrn"),
        lambda: repo.create_care_flow_definition(definition()),
        lambda: repo.update_care_flow_definition(definition(published=False)),
        lambda: repo.insert_webhook(hook),
        lambda: repo.save_webhook(hook),
    ]
    for expected, write in enumerate(writes, start=store.revision() + 1):
        write()
        assert store.revision() == expected


def test_refused_writes_and_patient_writes_leave_the_revision_alone(store: Store) -> None:
    store.configuration.create_identifier_system(system())
    store.configuration.create_care_flow_definition(definition())
    revision = store.revision()
    with pytest.raises(ConflictError):
        store.configuration.create_identifier_system(system())
    with pytest.raises(ConflictError):
        store.configuration.create_care_flow_definition(definition())
    patient, _ = store.patients.create_patient(None, {}, "req_1")
    store.patients.start_care_flow("intake", patient.id, {}, "req_1")
    assert store.revision() == revision
