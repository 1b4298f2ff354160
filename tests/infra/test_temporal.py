"""The Temporal helpers against real dev servers: connection, data converter, search attributes
and namespace setup. ``tests/test_cli.py`` covers ``make run``'s full namespace preparation."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from careflow.messages import WebhookRequestInput
from careflow.models import RequestStatus
from careflow.settings import Settings
from infra import temporal
from tests.conftest import free_port, start_dev_server


@pytest.fixture(scope="module")
async def bare_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own, without our search attributes."""
    env = await start_dev_server(register=False)
    try:
        yield env
    finally:
        await env.shutdown()


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(careflow_data_dir=tmp_path, **values)  # type: ignore[arg-type]


# --- connect ------------------------------------------------------------------------------------


async def test_connect_uses_the_address_namespace_and_encrypting_pydantic_converter(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = temporal_env.client.service_client.config.target_host
    client = await temporal.connect(_settings(tmp_path, temporal_address=target))
    assert client.namespace == "default"
    assert client.service_client.config.target_host == target
    assert client.service_client.config.tls is False
    assert await client.service_client.check_health()
    body = '{"name": "Zoë"}\n'.encode()
    message = WebhookRequestInput(
        request_id="req_1",
        webhook_id="wh_1",
        care_flow_definition_id="intake",
        received_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        body=body,
        handler_status=RequestStatus.SCHEDULED,
    )
    [plain] = client.data_converter.payload_converter.to_payloads([message])
    assert json.loads(plain.data)["body"] == "eyJuYW1lIjogIlpvw6sifQo="  # base64, not a string
    [payload] = await client.data_converter.encode([message])
    assert payload.metadata["encoding"] == b"binary/encrypted"  # then encrypted by the codec
    [decoded] = await client.data_converter.decode([payload], [WebhookRequestInput])
    assert decoded == message


async def test_an_unreachable_server_fails_at_once_unless_lazy(tmp_path: Path) -> None:
    settings = _settings(tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    with pytest.raises(RuntimeError):
        await temporal.connect(settings)
    lazy = await temporal.connect(settings, lazy=True)
    assert lazy.namespace == "default"


async def test_an_api_key_turns_tls_on(tmp_path: Path) -> None:
    settings = _settings(tmp_path, temporal_api_key="key-1", temporal_namespace="prod.acct")
    client = await temporal.connect(settings, lazy=True)
    assert client.service_client.config.tls is True
    assert client.service_client.config.api_key == "key-1"
    assert client.namespace == "prod.acct"


async def test_a_client_certificate_and_key_are_read_for_mtls(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\ncert\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nkey\n")
    client = await temporal.connect(
        _settings(tmp_path, temporal_tls_cert=cert, temporal_tls_key=key, temporal_api_key="k"),
        lazy=True,
    )
    tls = client.service_client.config.tls
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (cert.read_bytes(), key.read_bytes())


async def test_a_certificate_without_its_key_is_not_mtls(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_bytes(b"cert")
    client = await temporal.connect(_settings(tmp_path, temporal_tls_cert=cert), lazy=True)
    assert client.service_client.config.tls is False


# --- search attributes --------------------------------------------------------------------------


def test_the_search_attributes_are_the_documented_ones() -> None:
    """The names the README's Temporal UI queries use; all keywords but the IsTest flag."""
    assert {key.name: key.indexed_value_type.name for key in temporal.SEARCH_ATTRIBUTES} == {
        "WebhookId": "KEYWORD",
        "CareFlowDefinitionId": "KEYWORD",
        "RequestStatus": "KEYWORD",
        "PatientId": "KEYWORD",
        "CareFlowId": "KEYWORD",
        "IsTest": "BOOL",
    }


async def test_ensure_search_attributes_adds_only_the_missing_ones(
    bare_env: WorkflowEnvironment,
) -> None:
    client = bare_env.client
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={"RequestStatus": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
    )
    added = await temporal.ensure_search_attributes(client)
    assert added == ["CareFlowDefinitionId", "CareFlowId", "IsTest", "PatientId", "WebhookId"]
    assert await temporal.ensure_search_attributes(client) == []
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    for key in temporal.SEARCH_ATTRIBUTES:
        assert listed.custom_attributes[key.name] == int(key.indexed_value_type)


async def test_requests_can_be_found_by_every_search_attribute(
    temporal_client: Client,
) -> None:
    values = TypedSearchAttributes(
        [
            SearchAttributePair(temporal.SA_WEBHOOK_ID, "wh_sa"),
            SearchAttributePair(temporal.SA_CARE_FLOW_DEFINITION_ID, "intake"),
            SearchAttributePair(temporal.SA_REQUEST_STATUS, "FAILED"),
            SearchAttributePair(temporal.SA_PATIENT_ID, "pat_sa"),
            SearchAttributePair(temporal.SA_CARE_FLOW_ID, "cf_sa"),
            SearchAttributePair(temporal.SA_IS_TEST, True),
        ]
    )
    request_id = f"req_{uuid.uuid4().hex}"
    handle = await temporal_client.start_workflow(
        temporal.WORKFLOW_TYPE,
        id=request_id,
        task_queue=f"no-worker-{uuid.uuid4().hex[:8]}",
        search_attributes=values,
    )
    query = (
        f"WorkflowId = '{request_id}' AND WebhookId = 'wh_sa' AND "
        "CareFlowDefinitionId = 'intake' AND RequestStatus = 'FAILED' AND "
        "PatientId = 'pat_sa' AND CareFlowId = 'cf_sa' AND IsTest = true"
    )
    try:
        for _ in range(50):
            found = [w.id async for w in temporal_client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert found == [request_id]
        described = await handle.describe()
        assert described.typed_search_attributes == values
    finally:
        await handle.terminate()


# --- namespace retention ------------------------------------------------------------------------


async def test_set_retention_sets_the_namespace_retention(bare_env: WorkflowEnvironment) -> None:
    client = bare_env.client
    for days in (7, 45):
        await temporal.set_retention(client, days)
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        assert described.config.workflow_execution_retention_ttl.seconds == days * 86400
