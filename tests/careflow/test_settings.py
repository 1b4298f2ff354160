"""Settings from the environment and ``.env``, derived URLs and the admin token file."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from careflow.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting from the caller's environment or ``.env``; the working directory is tmp_path."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults_match_the_documented_table(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.careflow_data_dir == Path(".data")
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / '.data' / 'careflow.db'}"
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert settings.ui_base_url == "http://127.0.0.1:8233"
    assert settings.ui_internal_port == 8234  # make run: the dev server's UI behind the proxy
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.temporal_namespace == "default"
    assert settings.careflow_task_queue == "careflow-webhooks"
    assert settings.max_payload_bytes == 1_048_576
    assert settings.careflow_rate_limit == "100/second;3000/minute"
    assert (settings.activity_max_attempts, settings.activity_max_seconds) == (10, 600.0)
    assert settings.config_refresh_seconds == 1.0
    assert settings.careflow_max_concurrent_starts == 64
    assert settings.careflow_start_wait_seconds == 0.25


def test_environment_variables_are_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREFLOW_DATA_DIR", "/srv/careflow")
    monkeypatch.setenv("CAREFLOW_API_PORT", "9000")
    monkeypatch.setenv("CONFIG_REFRESH_SECONDS", "0.25")
    monkeypatch.setenv("TEMPORAL_TLS_CERT", "/etc/tls/client.pem")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://careflow@db/careflow")
    settings = Settings()
    assert settings.careflow_data_dir == Path("/srv/careflow")
    assert settings.careflow_api_port == 9000
    assert settings.config_refresh_seconds == 0.25
    assert settings.temporal_tls_cert == Path("/etc/tls/client.pem")
    assert settings.sqlalchemy_url == "postgresql+psycopg://careflow@db/careflow"


def test_dot_env_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "CAREFLOW_TASK_QUEUE=from-dot-env\nMAX_PAYLOAD_BYTES=2048\nSOMETHING_ELSE=ignored\n"
    )
    monkeypatch.setenv("MAX_PAYLOAD_BYTES", "4096")
    settings = Settings()
    assert settings.careflow_task_queue == "from-dot-env"
    assert settings.max_payload_bytes == 4096


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_PAYLOAD_BYTES", "0"),
        ("CONFIG_REFRESH_SECONDS", "0"),
        ("ACTIVITY_MAX_ATTEMPTS", "0"),
        ("ACTIVITY_MAX_SECONDS", "-1"),
        ("CAREFLOW_MAX_CONCURRENT_STARTS", "0"),
        ("CAREFLOW_START_WAIT_SECONDS", "0"),
        ("CAREFLOW_API_PORT", "eighty"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert [e["loc"] for e in raised.value.errors()] == [(name.lower(),)]


def test_public_and_ui_urls_come_from_host_and_ports_or_as_given() -> None:
    derived = Settings(careflow_api_host="0.0.0.0", careflow_api_port=9000, temporal_ui_port=9233)
    assert derived.public_base_url == "http://0.0.0.0:9000"
    assert derived.ui_base_url == "http://127.0.0.1:9233"
    given = Settings(
        careflow_public_url="https://hooks.example.org/",
        temporal_ui_url="https://temporal.example.org/ui/",
    )
    assert given.public_base_url == "https://hooks.example.org"
    assert given.ui_base_url == "https://temporal.example.org/ui"


def test_a_given_admin_token_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(careflow_admin_token="given", careflow_data_dir=tmp_path / "data")
    assert settings.admin_token() == "given"
    assert not (tmp_path / "data").exists()


def test_the_admin_token_is_generated_once_private_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token = Settings(careflow_data_dir=data_dir).admin_token()
    path = data_dir / "admin-token"
    assert len(token) >= 32
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(careflow_data_dir=data_dir).admin_token() == token  # another process


def test_an_empty_admin_token_variable_means_generate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAREFLOW_ADMIN_TOKEN", "")
    monkeypatch.setenv("CAREFLOW_DATA_DIR", str(tmp_path))
    token = Settings().admin_token()
    assert token and (tmp_path / "admin-token").read_text().strip() == token


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREFLOW_TASK_QUEUE", "first")
    first = get_settings()
    monkeypatch.setenv("CAREFLOW_TASK_QUEUE", "second")
    assert get_settings() is first
    assert first.careflow_task_queue == "first"


@pytest.mark.parametrize("stored", ["", "  \n"])
def test_an_empty_admin_token_file_is_replaced_never_used(tmp_path: Path, stored: str) -> None:
    # A process killed between creating and writing the file must not leave a blank token
    # (which would match a request without credentials).
    (tmp_path / "admin-token").write_text(stored)
    token = Settings(careflow_data_dir=tmp_path).admin_token()
    assert len(token) >= 32
    assert (tmp_path / "admin-token").read_text() == token + "\n"
    assert stat.S_IMODE((tmp_path / "admin-token").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]  # no temporary file left


def test_a_blank_admin_token_variable_means_generate(tmp_path: Path) -> None:
    token = Settings(careflow_admin_token="   ", careflow_data_dir=tmp_path).admin_token()
    assert token.strip() == token and len(token) >= 32


def test_the_encryption_key_ring_is_generated_once_private_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = Settings(careflow_data_dir=data_dir).encryption_keys()
    key_id, _, key = spec.partition(":")
    assert key_id.startswith("local-") and len(base64.b64decode(key)) == 32
    path = data_dir / "encryption-keys"
    assert path.read_text() == spec + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(careflow_data_dir=data_dir).encryption_keys() == spec  # another process
    assert [p.name for p in data_dir.iterdir()] == ["encryption-keys"]  # no temporary file left


def test_given_encryption_keys_are_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(careflow_encryption_keys=" a:xyz ", careflow_data_dir=tmp_path / "d")
    assert settings.encryption_keys() == "a:xyz"
    assert not (tmp_path / "d").exists()


def test_an_empty_key_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "encryption-keys").write_text("\n")
    spec = Settings(careflow_data_dir=tmp_path).encryption_keys()
    assert spec and (tmp_path / "encryption-keys").read_text() == spec + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["encryption-keys"]
