"""docker-compose.yml (the scaled-out stack of contract §1), validated offline.

No Docker engine runs where this project is developed and tested, so the stack is never started
here. `docker-compose config` (Debian's docker-compose package, which `make test` installs)
validates the file against the Compose schema and interpolates it without an engine; these tests
then read its normalized output and check what the contract asks of the file: pinned images, no
`temporalio/auto-setup`, a healthcheck on every long-running service, one-shot setup services
that register the namespace retention and the search attributes of §7.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DUMMY_TOKEN = "dummy-admin-token-for-compose-config"
DUMMY_KEYS = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
DUMMY_ID_HASH_KEY = "dummy-id-hash-key-for-compose-config"

# Contract §7: search attributes, Keyword unless noted.
SEARCH_ATTRIBUTES = {
    "WebhookId": "Keyword",
    "CareFlowDefinitionId": "Keyword",
    "RequestStatus": "Keyword",
    "PatientId": "Keyword",
    "CareFlowId": "Keyword",
    "IsTest": "Bool",
}
REQUIRED_SERVICES = {
    "postgresql",
    "temporal-admin-tools",
    "temporal",
    "temporal-ui",
    "api",
    "worker",
    "prometheus",
    "grafana",
}


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not on PATH. `make test` installs it (Debian package "
            "`docker-compose`: apt-get install -y docker-compose); run the tests through "
            "`make test`, or install it by hand.",
            pytrace=False,
        )
    return exe


def _run_compose(
    args: list[str],
    tmp_path: Path,
    *,
    token: str | None = DUMMY_TOKEN,
    keys: str | None = DUMMY_KEYS,
    id_hash_key: str | None = DUMMY_ID_HASH_KEY,
) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on our file with a clean environment.

    Only PATH is inherited: variables the file interpolates (CAREFLOW_*, TEMPORAL_*, …) and the
    project's `.env` must not change the outcome, so an empty --env-file replaces `.env`.
    """
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    if token is not None:
        env["CAREFLOW_ADMIN_TOKEN"] = token
    if keys is not None:
        env["CAREFLOW_ENCRYPTION_KEYS"] = keys
    if id_hash_key is not None:
        env["CAREFLOW_ID_HASH_KEY"] = id_hash_key
    return subprocess.run(
        [
            _docker_compose(),
            "--env-file",
            str(empty_env_file),
            "--project-directory",
            str(REPO),
            "-f",
            str(COMPOSE_FILE),
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _compose_major_version(tmp_path: Path) -> int:
    result = subprocess.run(
        [_docker_compose(), "version", "--short"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"(\d+)\.\d+", result.stdout)
    assert match, f"unexpected `docker-compose version --short` output: {result.stdout!r}"
    return int(match.group(1))


def _yaml_to_data(text: str) -> Any:
    """Parse YAML without making PyYAML a project dependency.

    docker-compose v1 is itself a Python program built on PyYAML, so the interpreter named in
    its shebang can always parse YAML; PyYAML in this venv is used when present.
    """
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    first_line = Path(_docker_compose()).read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    assert first_line.startswith("#!"), "docker-compose v1 is expected to be a Python script"
    interpreter = first_line[2:].split()
    result = subprocess.run(
        [
            *interpreter,
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The normalized, interpolated configuration as `docker-compose config` prints it."""
    tmp_path = tmp_path_factory.mktemp("compose")
    if _compose_major_version(tmp_path) >= 2:
        result = _run_compose(["config", "--format", "json"], tmp_path)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
    else:
        result = _run_compose(["config"], tmp_path)
        assert result.returncode == 0, result.stderr
        data = _yaml_to_data(result.stdout)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), data
    return data


def _services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


def _one_shot_services(config: dict[str, Any]) -> set[str]:
    """Services that another service waits for with `service_completed_successfully`."""
    one_shots: set[str] = set()
    for service in _services(config).values():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, dict):
            for name, spec in depends_on.items():
                if (spec or {}).get("condition") == "service_completed_successfully":
                    one_shots.add(name)
    return one_shots


def _script(service: dict[str, Any]) -> str:
    """A one-shot's shell script, with Compose's `$$` escapes undone."""
    command = service.get("command")
    text = command[-1] if isinstance(command, list) else str(command)
    return text.replace("$$", "$")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


# --- the file is valid Compose ------------------------------------------------------------------


def test_config_quiet_passes(tmp_path: Path) -> None:
    result = _run_compose(["config", "-q"], tmp_path)
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_admin_token_is_mandatory(tmp_path: Path) -> None:
    result = _run_compose(["config", "-q"], tmp_path, token=None)
    assert result.returncode != 0
    assert "CAREFLOW_ADMIN_TOKEN" in result.stderr + result.stdout


def test_encryption_keys_are_mandatory(tmp_path: Path) -> None:
    result = _run_compose(["config", "-q"], tmp_path, keys=None)
    assert result.returncode != 0
    assert "CAREFLOW_ENCRYPTION_KEYS" in result.stderr + result.stdout


def test_id_hash_key_is_mandatory(tmp_path: Path) -> None:
    # Every API and worker replica must derive the same ids (careflow.keyed_ids).
    result = _run_compose(["config", "-q"], tmp_path, id_hash_key=None)
    assert result.returncode != 0
    assert "CAREFLOW_ID_HASH_KEY" in result.stderr + result.stdout


def test_header_says_the_stack_was_not_run_here() -> None:
    head = COMPOSE_FILE.read_text().split("\nservices:", 1)[0]
    assert "NOT RUN ON THESE MACHINES" in head
    assert "config -q" in head


# --- images -------------------------------------------------------------------------------------


def test_required_services_exist(config: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - set(_services(config))
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_no_auto_setup_image(config: dict[str, Any]) -> None:
    for name, service in _services(config).items():
        assert "auto-setup" not in service.get("image", ""), (
            f"{name}: temporalio/auto-setup is no longer built; use temporalio/server + "
            "a one-shot temporalio/admin-tools service"
        )


def test_every_image_tag_is_pinned(config: dict[str, Any]) -> None:
    for name, service in _services(config).items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service needs a pinned image: name too)"
        if "@sha256:" in image:
            continue
        last_segment = image.rsplit("/", 1)[-1]
        assert ":" in last_segment, f"{name}: image {image!r} has no tag"
        tag = last_segment.rsplit(":", 1)[1]
        assert tag != "latest", f"{name}: image {image!r} uses `latest`"
        # prom/prometheus tags its releases v3.5.0: a leading "v" is still a pinned version.
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: tag of {image!r} is not a version"


def test_admin_tools_match_the_server_version(config: dict[str, Any]) -> None:
    services = _services(config)
    server_tag = services["temporal"]["image"].rsplit(":", 1)[1]
    assert services["temporal"]["image"].startswith("temporalio/server:")
    for name, service in services.items():
        image = service.get("image", "")
        if image.startswith("temporalio/admin-tools:"):
            admin_tag = image.rsplit(":", 1)[1]
            assert admin_tag == server_tag or admin_tag.startswith(server_tag + "-"), (
                f"{name}: admin-tools {admin_tag} does not match server {server_tag}"
            )


# --- health and ordering ------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    one_shots = _one_shot_services(config)
    for name, service in _services(config).items():
        if name in one_shots:
            continue
        healthcheck = service.get("healthcheck") or {}
        test = healthcheck.get("test")
        assert test and not healthcheck.get("disable"), f"{name}: no healthcheck"
        assert test not in (["NONE"], "NONE"), f"{name}: healthcheck disabled"


def test_one_shots_are_not_restarted_forever(config: dict[str, Any]) -> None:
    one_shots = _one_shot_services(config)
    assert {"temporal-admin-tools"} <= one_shots
    for name in one_shots:
        restart = str(_services(config)[name].get("restart", "no"))
        assert restart not in ("always", "unless-stopped"), f"{name}: restart={restart}"


def test_start_order(config: dict[str, Any]) -> None:
    services = _services(config)

    def condition(service: str, dependency: str) -> str | None:
        spec = (services[service].get("depends_on") or {}).get(dependency)
        return (spec or {}).get("condition")

    assert condition("temporal-admin-tools", "postgresql") == "service_healthy"
    assert condition("temporal", "temporal-admin-tools") == "service_completed_successfully"
    namespace_step = _namespace_service(config)
    assert condition(namespace_step, "temporal") == "service_healthy"
    for app in ("api", "worker"):
        assert condition(app, "temporal") == "service_healthy"
        assert condition(app, "postgresql") == "service_healthy"
        assert condition(app, namespace_step) == "service_completed_successfully"


def test_one_shot_scripts_parse_as_bash(config: dict[str, Any], tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the one-shot scripts"
    for name, service in _services(config).items():
        entrypoint = service.get("entrypoint") or []
        if not (isinstance(entrypoint, list) and entrypoint[:1] == ["/bin/bash"]):
            continue
        script = tmp_path / f"{name}.sh"
        script.write_text(_script(service))
        result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


# --- what the one-shots set up ------------------------------------------------------------------


def _namespace_service(config: dict[str, Any]) -> str:
    """The one-shot admin-tools service that creates the namespace."""
    for name, service in _services(config).items():
        if service.get("image", "").startswith("temporalio/admin-tools:") and (
            "namespace create" in _script(service)
        ):
            return name
    pytest.fail("no temporalio/admin-tools service runs `temporal operator namespace create`")


def test_schema_step_sets_up_both_postgres12_databases(config: dict[str, Any]) -> None:
    script = _script(_services(config)["temporal-admin-tools"])
    assert "temporal-sql-tool" in script and "postgres12" in script
    for database in ("temporal", "temporal_visibility"):
        assert f"--db {database} setup-schema" in script
        assert f"--db {database} update-schema" in script
    assert "/etc/temporal/schema/postgresql/v12" in script
    assert "/temporal/versioned" in script
    assert "/visibility/versioned" in script


def test_namespace_step_sets_30_day_retention_and_search_attributes(
    config: dict[str, Any],
) -> None:
    script = _script(_services(config)[_namespace_service(config)])
    assert 'namespace create -n "$NS" --retention 720h' in script
    assert 'namespace update -n "$NS" --retention 720h' in script
    assert re.search(r"^NS=default$", script, re.MULTILINE)
    registered = dict(re.findall(r"\b([A-Za-z]+):(Keyword|Bool)\b", script))
    assert registered == SEARCH_ATTRIBUTES
    assert "search-attribute create" in script


def test_search_attributes_match_the_code() -> None:
    """The list in the compose file (via SEARCH_ATTRIBUTES) is the one the code uses."""
    from infra.temporal import SEARCH_ATTRIBUTES as code_keys

    in_code = {key.name: key.indexed_value_type.name.title() for key in code_keys}
    assert in_code == SEARCH_ATTRIBUTES


# --- the service itself -------------------------------------------------------------------------


def test_api_and_worker_environment(config: dict[str, Any]) -> None:
    services = _services(config)
    for app in ("api", "worker"):
        env = _environment(services[app])
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://careflow:")
        assert env["DATABASE_URL"].endswith("@postgresql:5432/careflow")
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["TEMPORAL_NAMESPACE"] == "default"
        assert env["CAREFLOW_TASK_QUEUE"] == "careflow-webhooks"
        assert env["CAREFLOW_ADMIN_TOKEN"] == DUMMY_TOKEN
        assert env["CAREFLOW_ENCRYPTION_KEYS"] == DUMMY_KEYS  # one ring for every replica
        assert env["CAREFLOW_ID_HASH_KEY"] == DUMMY_ID_HASH_KEY
    assert "uvicorn" in services["api"]["command"]
    assert "api.main:app" in services["api"]["command"]
    assert services["worker"]["command"] == ["python", "worker.py"]


def test_ui_is_pinned_and_published_on_8233(config: dict[str, Any]) -> None:
    ui = _services(config)["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert _environment(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    published = [
        (str(port.get("published")), int(port["target"]))
        if isinstance(port, dict)
        else (port.rsplit(":", 1)[0], int(port.rsplit(":", 1)[1]))
        for port in ui.get("ports", [])
    ]
    assert ("8233", 8080) in published


def test_ui_decodes_through_the_api_codec_server_with_credentials(config: dict[str, Any]) -> None:
    env = _environment(_services(config)["temporal-ui"])
    assert env["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8000/codec"
    assert env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"


def test_postgres_init_script_is_mounted(config: dict[str, Any]) -> None:
    volumes = _services(config)["postgresql"].get("volumes", [])
    sources = [
        volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
        for volume in volumes
    ]
    init = REPO / "deploy" / "postgres-init.sql"
    assert str(init) in sources
    text = init.read_text()
    for statement in (
        "CREATE DATABASE temporal OWNER temporal",
        "CREATE DATABASE temporal_visibility OWNER temporal",
        "CREATE DATABASE careflow OWNER careflow",
    ):
        assert statement in text


def test_migrate_one_shot_uses_names_that_exist(config: dict[str, Any]) -> None:
    """careflow-migrate runs Store(get_settings().sqlalchemy_url).migrate(); keep it in step."""
    migrate = _services(config).get("careflow-migrate")
    if migrate is None:
        return
    assert "migrate()" in " ".join(migrate["command"])
    from careflow.settings import Settings, get_settings
    from persistence.store import Store

    assert callable(get_settings)
    assert callable(Store.migrate)
    assert isinstance(Settings.sqlalchemy_url, property)


def test_dockerfile_runs_as_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11[.\d]*-slim", text, re.MULTILINE)
    assert re.search(r"^USER (?!root\b|0\b)\S+", text, re.MULTILINE)
    assert "pip install ." in text
    # Bytecode compiled at build: the workflow sandbox re-imports workflow modules for every run.
    assert "python -m compileall -q /app" in text


# --- metrics and dashboards ---------------------------------------------------------------------


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → host path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = str(volume.get("source"))
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def test_prometheus_loads_the_deploy_config_and_rules(config: dict[str, Any]) -> None:
    prometheus = _services(config)["prometheus"]
    mounts = _mounts(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == str(
        REPO / "deploy/prometheus/prometheus.yml"
    )
    assert mounts["/etc/prometheus/rules.yml"] == str(REPO / "deploy/prometheus/rules.yml")
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = _yaml_to_data((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: (job["dns_sd_configs"][0]["names"], job["dns_sd_configs"][0]["port"])
        for job in scrape["scrape_configs"]
    }
    worker_env = _environment(_services(config)["worker"])
    assert targets["careflow-worker"] == (
        ["worker"],
        int(worker_env["CAREFLOW_WORKER_METRICS_PORT"]),
    )
    assert worker_env["CAREFLOW_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert targets["careflow-api"] == (["api"], 8000)


def test_grafana_provisions_the_datasource_and_dashboards(config: dict[str, Any]) -> None:
    grafana = _services(config)["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == str(REPO / "deploy/grafana/provisioning")
    assert mounts["/var/lib/grafana/dashboards"] == str(REPO / "deploy/grafana/dashboards")
    datasource = _yaml_to_data(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = _yaml_to_data(
        (REPO / "deploy/grafana/provisioning/dashboards/careflow.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (grafana.get("depends_on") or {})["prometheus"]["condition"] == "service_healthy"


# --- no PHI in the API's logs ---------------------------------------------------------------------


def _api_commands(config: dict[str, Any]) -> dict[str, list[str]]:
    """Every uvicorn command line that runs the API: compose services and the image's CMD."""
    commands = {
        name: [str(part) for part in service["command"]]
        for name, service in _services(config).items()
        if isinstance(service.get("command"), list) and "uvicorn" in service["command"][:1]
    }
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])\s*$", dockerfile, re.MULTILINE)
    assert cmd is not None
    commands["Dockerfile CMD"] = json.loads(cmd.group(1))
    return commands


def test_the_api_commands_log_no_url_query(config: dict[str, Any], tmp_path: Path) -> None:
    """Each API command of the scaled-out stack, run for real: a query string (a sender's
    ``?patient=…`` or an operator's ``/v1/patients?identifier=system|MRN``) must not reach the
    logs. uvicorn's access log prints the path with its query; ``make run`` turns it off."""
    import socket
    import sys
    import time

    import httpx

    commands = _api_commands(config)
    assert commands.keys() >= {"api", "Dockerfile CMD"}, commands.keys()
    for name, command in commands.items():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = command[1:]
        args[args.index("--host") + 1] = "127.0.0.1"
        args[args.index("--port") + 1] = str(port)
        env = {
            **os.environ,
            "CAREFLOW_ADMIN_TOKEN": DUMMY_TOKEN,
            "CAREFLOW_ENCRYPTION_KEYS": DUMMY_KEYS,
            "CAREFLOW_ID_HASH_KEY": DUMMY_ID_HASH_KEY,
            "CAREFLOW_DATA_DIR": str(tmp_path / name.replace(" ", "-")),
            "DATABASE_URL": f"sqlite:///{tmp_path / (name.replace(' ', '-') + '.db')}",
            "TEMPORAL_ADDRESS": "127.0.0.1:1",  # not needed: the client connects lazily
        }
        for key in [k for k in env if k.startswith("OTEL_")]:
            del env[key]
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, name
                time.sleep(0.2)
            auth = {"Authorization": f"Bearer {DUMMY_TOKEN}"}
            httpx.get(f"{base}/v1/patients?identifier=urn:x|MRN-77001134", headers=auth)
            httpx.post(f"{base}/hooks/wh_none?patient=Zelphinia", json={})
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=30)
        assert "Application startup complete" in output, (name, output)
        for phi in ("MRN-77001134", "Zelphinia"):
            assert phi not in output, (name, phi, output)
