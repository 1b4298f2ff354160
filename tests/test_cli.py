"""The namespace preparation that `make run` performs on every start."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from careflow.settings import Settings
from cli import dev_server_command, prepare_namespace
from infra import temporal
from tests.conftest import start_dev_server


async def test_prepare_namespace_registers_attributes_and_retention(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = await start_dev_server(register=False)
    try:
        settings = Settings(
            temporal_address=env.client.service_client.config.target_host,
            careflow_data_dir=tmp_path,
        )
        assert await temporal.ensure_search_attributes(env.client) == sorted(
            k.name for k in temporal.SEARCH_ATTRIBUTES
        )
        await prepare_namespace(settings, timeout=10)
        await prepare_namespace(settings, timeout=10)  # idempotent
        client = env.client
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        for key in temporal.SEARCH_ATTRIBUTES:
            assert key.name in listed.custom_attributes
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        assert described.config.workflow_execution_retention_ttl.seconds == 30 * 86400
    finally:
        await env.shutdown()


def test_dev_server_command_uses_sqlite_wal_in_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        careflow_data_dir=tmp_path, temporal_address="127.0.0.1:7999", temporal_ui_port=8999
    )
    command = dev_server_command(settings)
    assert command[1:3] == ["server", "start-dev"]
    joined = " ".join(command)
    assert f"--db-filename {tmp_path / 'temporal.db'}" in joined
    assert "--sqlite-pragma journal_mode=wal" in joined
    assert "--sqlite-pragma synchronous=normal" in joined
    assert "--port 7999" in joined and "--ui-port 8999" in joined


def test_api_runs_without_access_log(tmp_path: Path) -> None:
    """uvicorn's access log would print query strings such as ?identifier=system|value."""
    import cli

    settings = Settings(careflow_data_dir=tmp_path, careflow_api_port=8123)
    command = cli.api_command(settings)
    assert "--no-access-log" in command
    assert command[command.index("--port") + 1] == "8123"


def test_dev_server_ui_decodes_through_the_api_codec_server(tmp_path: Path) -> None:
    settings = Settings(careflow_data_dir=tmp_path, careflow_api_port=8123)
    command = dev_server_command(settings)
    endpoint = command[command.index("--ui-codec-endpoint") + 1]
    assert endpoint == "http://127.0.0.1:8123/codec"


async def test_encryption_keys_reports_key_ids_in_use(api, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """No worker polls the test's queue: the request stays open, encrypted under test-a."""
    import base64

    from cli import report_key_usage
    from tests.conftest import TEST_KEY_ID
    from tests.factories import open_webhook

    hook_id = await open_webhook(api)
    answer = await api.http.post(f"/hooks/{hook_id}", json={"a": 1})
    assert answer.status_code == 202
    report = await report_key_usage(settings, include_closed=False)
    assert report["ring"] == [TEST_KEY_ID] and report["encrypting_key_id"] == TEST_KEY_ID
    assert report["key_ids_in_use"][TEST_KEY_ID] >= 1  # type: ignore[index]
    assert TEST_KEY_ID not in report["unknown_key_ids"]  # type: ignore[operator]
    assert report["plaintext_requests"] == 0

    rotated = settings.model_copy(
        update={"careflow_encryption_keys": "new:" + base64.b64encode(b"n" * 32).decode()}
    )
    after = await report_key_usage(rotated, include_closed=True)
    assert after["ring"] == ["new"]
    assert TEST_KEY_ID in after["unknown_key_ids"]  # type: ignore[operator]
    assert "new" not in after["unknown_key_ids"]  # type: ignore[operator]
    assert after["requests"] >= report["requests"]  # type: ignore[operator]
