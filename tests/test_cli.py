"""The namespace preparation that `make run` performs on every start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from careflow.settings import Settings
from cli import dev_server_command, prepare_namespace
from infra import temporal
from tests.conftest import ADMIN_TOKEN, Api, free_port, start_dev_server
from tests.factories import configure_fhir_webhook, post_sample


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
    # The dev server's UI is internal (loopback, TEMPORAL_UI_PORT + 1); the UI proxy serves 8999.
    assert "--port 7999" in joined and "--ui-ip 127.0.0.1 --ui-port 9000" in joined


def test_the_ui_proxy_serves_the_ui_port_in_front_of_the_internal_one(tmp_path: Path) -> None:
    import cli

    settings = Settings(
        careflow_data_dir=tmp_path,
        careflow_api_host="0.0.0.0",
        careflow_api_port=8123,
        temporal_ui_port=8999,
        temporal_ui_internal_port=9555,
    )
    command = cli.ui_proxy_command(settings)
    assert command[1:3] == ["-m", "api.temporal_ui_proxy"]
    args = dict(zip(command[3::2], command[4::2], strict=True))
    assert args == {
        "--host": "127.0.0.1",
        "--port": "8999",
        "--upstream": "http://127.0.0.1:9555",
        "--codec-upstream": "http://127.0.0.1:8123/codec",
    }
    assert settings.ui_base_url == "http://127.0.0.1:8999"  # /ui links, CORS origin, README


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


def test_forwarded_headers_are_believed_only_from_configured_proxies(tmp_path: Path) -> None:
    import cli

    plain = cli.api_command(Settings(careflow_data_dir=tmp_path))
    assert "--no-proxy-headers" in plain and "--forwarded-allow-ips" not in plain
    proxied = cli.api_command(
        Settings(careflow_data_dir=tmp_path, careflow_forwarded_allow_ips="10.0.0.5")
    )
    assert proxied[proxied.index("--forwarded-allow-ips") + 1] == "10.0.0.5"
    assert "--no-proxy-headers" not in proxied


async def test_x_forwarded_for_does_not_pick_the_sign_in_throttle_key(
    tmp_path: Path, temporal_env: Any
) -> None:
    """Issue 15c: the API as ``make run`` starts it (``cli.api_command``), sign-ins from
    127.0.0.1 each claiming another address in X-Forwarded-For: the sixth is 429 all the same
    (uvicorn's default trusts X-Forwarded-For from 127.0.0.1)."""
    import cli

    port = free_port()
    settings = Settings(careflow_data_dir=tmp_path / "data", careflow_api_port=port)
    env = {
        **os.environ,
        "CAREFLOW_DATA_DIR": str(tmp_path / "data"),
        "CAREFLOW_API_PORT": str(port),
        "CAREFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    env.pop("CAREFLOW_FORWARDED_ALLOW_IPS", None)
    process = subprocess.Popen(cli.api_command(settings), cwd=ROOT, env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None and time.monotonic() < deadline
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            codes = [
                (
                    await http.post(
                        "/ui/login",
                        data={"token": "guess"},
                        headers={"x-forwarded-for": f"203.0.113.{n}"},
                    )
                ).status_code
                for n in range(7)
            ]
        assert codes == [401] * 5 + [429] * 2
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_dev_server_starts_and_stops_without_warn_lines(tmp_path: Path) -> None:
    """Issue 17, point 9: at ``--log-level warn`` a start and Ctrl-C printed 13–23 WARN lines."""
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


# --- `make run` supervision (issue 15 finding 2) ------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _child(cli: psutil.Process, marker: str) -> psutil.Process | None:
    """The running child of ``cli`` whose command line holds ``marker``."""
    for child in cli.children():
        try:
            if child.is_running() and any(marker in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


async def _new_child(cli: psutil.Process, marker: str, old_pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _child(cli, marker)
        if child is not None and child.pid != old_pid:
            return child.pid
        await asyncio.sleep(0.1)
    raise AssertionError(f"{marker} was not restarted")


async def _ready(
    http: httpx.AsyncClient, process: subprocess.Popen[bytes], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "cli.py run exited"
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise AssertionError("the stack did not become ready")


async def _ui_settings(http: httpx.AsyncClient, ui: str, timeout: float = 60) -> Any:
    """The Temporal UI's settings through the UI proxy, once both answer."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            answer = await http.get(f"{ui}/api/v1/settings")
            if answer.status_code == 200:
                return answer.json()
            assert answer.status_code == 502, answer.text  # the dev server's UI not up yet
            assert answer.json()["code"] == "temporal_ui_unavailable"
        assert time.monotonic() < deadline, "the UI proxy did not come back"
        await asyncio.sleep(0.2)


async def _delivered(api: Api, hook_id: str) -> tuple[float, int]:
    """POST the FHIR sample until accepted (202; any other answer must be 503
    ``temporal_unavailable``) and wait for SUCCESS; seconds it took and the 503s seen."""
    started = time.monotonic()
    unavailable = 0
    while True:
        answer = await post_sample(api, hook_id)
        if answer.status_code == 202:
            break
        assert answer.status_code == 503, answer.text
        assert answer.json()["errors"][0]["code"] == "temporal_unavailable"
        unavailable += 1
        await asyncio.sleep(0.2)
    await api.wait_status(answer.json()["request_id"], {"SUCCESS"}, timeout=120)
    return time.monotonic() - started, unavailable


def _start_stack(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    """``python cli.py run`` on free ports in a temp data dir; its output goes to a file."""
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CAREFLOW_DATA_DIR": str(tmp_path / "data"),
        "CAREFLOW_API_PORT": str(api_port),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_UI_PORT": str(ui_port),
        "TEMPORAL_UI_INTERNAL_PORT": str(free_port()),
        "CAREFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / f"run-{api_port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "cli.py", "run"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return process, api_port, ui_port, log_path


async def test_make_run_restarts_a_killed_worker_and_dev_server(tmp_path: Path) -> None:
    """SIGKILL the worker, then the Temporal dev server, under ``python cli.py run``: each is
    restarted (one log line each), the API keeps answering (202 or 503 ``temporal_unavailable``,
    never a refused connection) and a request sent afterwards reaches SUCCESS. SIGTERM then
    stops everything. The seconds until each is back are printed, not asserted."""
    for _attempt in range(3):  # a free port can be taken by someone else before the stack binds
        process, api_port, ui_port, log_path = _start_stack(tmp_path)
        while process.poll() is None and not log_path.read_text().count("is up"):
            await asyncio.sleep(0.2)
        if process.poll() is None or "in use" not in log_path.read_text():
            break
    cli = psutil.Process(process.pid)
    descendants: list[psutil.Process] = []
    try:
        base_url = f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            api = Api(base_url=base_url, http=http, settings=Settings())
            await _ready(http, process)
            hook = await configure_fhir_webhook(api)
            await _delivered(api, hook["id"])

            worker = _child(cli, "worker.py")
            assert worker is not None
            killed = time.monotonic()
            worker.kill()
            await _new_child(cli, "worker.py", worker.pid)
            worker_restarted = time.monotonic() - killed
            took, _ = await _delivered(api, hook["id"])
            worker_delivered = took + worker_restarted

            server = _child(cli, "start-dev")
            assert server is not None
            killed = time.monotonic()
            server.kill()

            async def server_back() -> float:
                await _new_child(cli, "start-dev", server.pid)
                return time.monotonic() - killed

            # A request sent at once: the API holds it while the server is down (the client
            # retries for up to 5 s, then 503 temporal_unavailable), never a refused connection.
            server_restarted, (_, unavailable) = await asyncio.gather(
                server_back(), _delivered(api, hook["id"])
            )
            server_delivered = time.monotonic() - killed

            # The Temporal UI proxy: restarted too, and back to answering the UI's settings
            # with the codec credentials on (502 temporal_ui_unavailable until its UI is up).
            proxy = _child(cli, "api.temporal_ui_proxy")
            assert proxy is not None
            proxy.kill()
            await _new_child(cli, "api.temporal_ui_proxy", proxy.pid)
            ui_settings = await _ui_settings(http, f"http://127.0.0.1:{ui_port}")
            assert ui_settings["Codec"]["IncludeCredentials"] is True
            assert ui_settings["Codec"]["Endpoint"] == f"http://127.0.0.1:{ui_port}/codec"
            descendants = cli.children(recursive=True)
        print(
            f"worker SIGKILL: restarted after {worker_restarted:.1f} s, a request sent then"
            f" reached SUCCESS {worker_delivered:.1f} s after the kill; dev server SIGKILL:"
            f" restarted after {server_restarted:.1f} s, {unavailable} answers 503"
            f" temporal_unavailable meanwhile, a request reached SUCCESS {server_delivered:.1f} s"
            " after the kill"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert alive == []
    finally:
        if process.poll() is None:
            for child in cli.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            process.kill()
            process.wait()
    log = log_path.read_text()
    assert "worker exited (exit code -9 (SIGKILL))" in log, log
    assert "Temporal dev server exited (exit code -9 (SIGKILL))" in log, log
    assert "Temporal UI proxy exited (exit code -9 (SIGKILL))" in log, log
    assert "a component exited; stopping the rest" not in log
