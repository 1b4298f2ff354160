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


def test_dev_server_starts_and_stops_without_warn_lines(tmp_path: Path) -> None:
    """Issue 17, point 9: at ``--log-level warn`` a start and Ctrl-C printed 13–23 WARN lines."""
    import signal
    import subprocess
    import time

    from tests.conftest import free_port

    settings = Settings(
        careflow_data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(),
    )
    command = dev_server_command(settings)
    assert command[command.index("--log-level") + 1] == "error"
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(5)
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert b"level=WARN" not in output and b"level=ERROR" not in output, output.decode()
