"""``api/services/webhooks.py``: webhooks are created disabled, merge-patched (RFC 7396), enabled
through the gate and soft-deleted — each write in this process's configuration cache at once —
and a proposed mapping is previewed on a kept test payload, saving nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.services.webhooks import WebhookService
from careflow.errors import ConflictError, InvalidConfigError, NotFoundError
from careflow.models import (
    DataPointMapping,
    Identifier,
    IdentifierSystem,
    PatientIdentifierMapping,
    PreviewRequest,
    RequestStatus,
    SignatureConfig,
    TestPayload,
    WebhookCreate,
)
from persistence.config_cache import ConfigCache
from persistence.store import Store
from tests.factories import MRN_SYSTEM, store_definition

AGE = DataPointMapping(data_point_definition_id="age", path="$.age")


@pytest.fixture
def config(store: Store) -> ConfigCache:
    """A cache that only the service refreshes; ``intake`` (``age``) and system ``mrn`` exist."""
    store_definition(store)
    store.configuration.create_identifier_system(IdentifierSystem(name="mrn", system=MRN_SYSTEM))
    cache = ConfigCache(store, refresh_seconds=3600)
    cache.refresh()
    return cache


@pytest.fixture
def service(store: Store, config: ConfigCache) -> WebhookService:
    return WebhookService(store, config)


def _codes(exc: pytest.ExceptionInfo[Any]) -> list[str]:
    return [e.code for e in exc.value.errors]


def test_create_is_disabled_and_in_the_snapshot_at_once(
    service: WebhookService, config: ConfigCache, store: Store
) -> None:
    hook = service.create(WebhookCreate(name="h", care_flow_definition_id="intake"))
    assert hook.enabled is False
    assert config.snapshot.webhooks[hook.id].name == "h"
    assert store.configuration.get_webhook(hook.id).enabled is False


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (
            {
                "data_point_mappings": [
                    DataPointMapping(data_point_definition_id="age", path="$.[[[")
                ]
            },
            "invalid_path",
        ),
        ({"signature": SignatureConfig(scheme="rot13", secret="s")}, "invalid_signature_scheme"),
        ({"signature": SignatureConfig(scheme="hmac")}, "invalid_signature_config"),
    ],
    ids=["path", "scheme", "no secret"],
)
def test_create_refuses_what_cannot_work(
    service: WebhookService, store: Store, fields: dict[str, Any], code: str
) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        service.create(WebhookCreate(name="h", care_flow_definition_id="intake", **fields))
    assert _codes(exc) == [code]
    assert store.configuration.list_webhooks() == []


def test_merge_patch_follows_rfc_7396(
    service: WebhookService, config: ConfigCache, store: Store
) -> None:
    hook = service.create(
        WebhookCreate(
            name="h",
            care_flow_definition_id="intake",
            data_point_mappings=[AGE, DataPointMapping(data_point_definition_id="x", path="$.x")],
            patient_identifier=PatientIdentifierMapping(system=MRN_SYSTEM, value_path="$.mrn"),
            delivery_id_path="$.id",
            signature=SignatureConfig(scheme="hmac", secret="first-secret", header="X-Sig"),
        )
    )

    def patch(document: dict[str, Any]) -> Any:
        patched = service.patch(hook.id, document)
        assert config.snapshot.webhooks[hook.id] == patched  # in the cache at once
        assert store.configuration.get_webhook(hook.id) == patched
        return patched

    # Objects merge: the identifier keeps its system.
    patched = patch({"patient_identifier": {"value_path": "$.patient.mrn"}})
    assert patched.patient_identifier == PatientIdentifierMapping(
        system=MRN_SYSTEM, value_path="$.patient.mrn"
    )
    # Arrays replace, whole.
    patched = patch({"data_point_mappings": [{"data_point_definition_id": "age", "path": "$.y"}]})
    assert patched.data_point_mappings == [
        DataPointMapping(data_point_definition_id="age", path="$.y")
    ]
    # null removes a key; what the patch leaves out stays.
    patched = patch({"delivery_id_path": None, "name": "renamed"})
    assert (patched.delivery_id_path, patched.name) == (None, "renamed")
    assert patched.patient_identifier is not None
    # An omitted secret is kept; a given one replaces it.
    patched = patch({"signature": {"header": "X-Other"}})
    assert (patched.signature.header, patched.signature.secret) == ("X-Other", "first-secret")
    patched = patch({"signature": {"secret": "second-secret"}})
    assert patched.signature.secret == "second-secret"
    # null removes the secret too, and a signature without one is refused, not kept as it was.
    with pytest.raises(InvalidConfigError) as refused:
        service.patch(hook.id, {"signature": {"secret": None}})
    assert _codes(refused) == ["invalid_signature_config"]
    assert store.configuration.get_webhook(hook.id).signature.secret == "second-secret"
    patched = patch({"signature": None, "patient_identifier": None})
    assert (patched.signature, patched.patient_identifier) == (None, None)
    assert patched.enabled is False and patched.created_at == hook.created_at


@pytest.mark.parametrize("field", ["id", "enabled", "created_at", "updated_at", "url", "test_url"])
def test_read_only_fields_are_refused(service: WebhookService, store: Store, field: str) -> None:
    hook = service.create(WebhookCreate(name="h", care_flow_definition_id="intake"))
    with pytest.raises(InvalidConfigError) as exc:
        service.patch(hook.id, {field: "x", "name": "changed"})
    assert _codes(exc) == ["read_only_field"]
    assert store.configuration.get_webhook(hook.id).name == "h"


def test_a_patch_that_does_not_validate_is_refused(service: WebhookService) -> None:
    hook = service.create(WebhookCreate(name="h", care_flow_definition_id="intake"))
    with pytest.raises(InvalidConfigError) as exc:
        service.patch(hook.id, {"name": "", "data_point_mappings": "not a list"})
    assert _codes(exc) == ["invalid_request", "invalid_request"]  # as POST answers
    with pytest.raises(InvalidConfigError) as exc:
        service.patch(hook.id, {"skip_if_enrolled": "yes"})
    assert _codes(exc) == ["invalid_request"]
    with pytest.raises(InvalidConfigError) as exc:
        service.patch(hook.id, {"delivery_id_path": "$.[[["})
    assert _codes(exc) == ["invalid_path"]


def test_enable_gate_and_disable(service: WebhookService, config: ConfigCache) -> None:
    hook = service.create(WebhookCreate(name="h", care_flow_definition_id="intake"))
    with pytest.raises(ConflictError) as exc:
        service.enable(hook.id)
    assert _codes(exc) == ["missing_data_point_mapping"]
    assert config.snapshot.webhooks[hook.id].enabled is False
    service.patch(hook.id, {"data_point_mappings": [AGE.model_dump()]})
    assert service.enable(hook.id).enabled is True
    assert config.snapshot.webhooks[hook.id].enabled is True
    assert service.disable(hook.id).enabled is False
    assert config.snapshot.webhooks[hook.id].enabled is False


def test_delete_is_soft_and_in_the_snapshot_at_once(
    service: WebhookService, config: ConfigCache, store: Store
) -> None:
    hook = service.create(WebhookCreate(name="h", care_flow_definition_id="intake"))
    service.patch(hook.id, {"data_point_mappings": [AGE.model_dump()]})
    service.enable(hook.id)
    service.delete(hook.id)
    kept = store.configuration.get_webhook(hook.id, include_deleted=True)
    assert (kept.deleted, kept.enabled) == (True, False)
    assert config.snapshot.webhooks[hook.id].deleted is True
    for write in (service.disable, service.enable, service.delete):
        with pytest.raises(NotFoundError):
            write(hook.id)
    with pytest.raises(NotFoundError):
        service.patch(hook.id, {"name": "back"})


def test_preview_reads_a_kept_test_payload_and_saves_nothing(
    service: WebhookService, store: Store
) -> None:
    hook = service.create(
        WebhookCreate(
            name="h",
            care_flow_definition_id="intake",
            data_point_mappings=[AGE],
            patient_identifier=PatientIdentifierMapping(system=MRN_SYSTEM, value_path="$.mrn"),
        )
    )
    with pytest.raises(NotFoundError) as exc:
        service.preview(hook.id, PreviewRequest())
    assert _codes(exc) == ["test_payload_not_found"]
    store.test_payloads.add_test_payload(
        TestPayload(
            webhook_id=hook.id,
            request_id="req_test_1",
            received_at=datetime.now(UTC),
            verdict=RequestStatus.SCHEDULED,
            payload={"age": 3, "years": 4, "mrn": "9"},
        )
    )
    with pytest.raises(NotFoundError):
        service.preview(hook.id, PreviewRequest(request_id="req_other"))

    as_saved = service.preview(hook.id, PreviewRequest(request_id="req_test_1"))
    assert as_saved.verdict == RequestStatus.SCHEDULED
    assert as_saved.data_points == {"age": 3}
    assert as_saved.patient_identifier == Identifier(system=MRN_SYSTEM, value="9")
    proposed = service.preview(
        hook.id,
        PreviewRequest(
            data_point_mappings=[DataPointMapping(data_point_definition_id="age", path="$.years")],
            patient_identifier=None,  # given as null: the proposal has no identifier
        ),
    )
    assert proposed.data_points == {"age": 4} and proposed.patient_identifier is None
    broken = service.preview(
        hook.id,
        PreviewRequest(
            data_point_mappings=[DataPointMapping(data_point_definition_id="age", path="$.[[[")]
        ),
    )
    assert broken.verdict == RequestStatus.REJECTED
    assert [e.code for e in broken.errors] == ["invalid_path"]
    assert store.configuration.get_webhook(hook.id).data_point_mappings == [AGE]
