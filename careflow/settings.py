"""Service settings, read from the environment (and ``.env``) once per process (contract §1)."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All knobs of the service; names are the environment variables of contract §1.

    Attributes:
        careflow_admin_token: bearer token for ``/v1``; when unset, generated once and kept in
            ``$CAREFLOW_DATA_DIR/admin-token``.
        careflow_data_dir: directory of the SQLite files and the admin token.
        careflow_id_hash_key: secret of the keyed hashes in ids derived from payload values
            (``careflow.keyed_ids``); when unset, generated once and kept in
            ``$CAREFLOW_DATA_DIR/id-hash-key``. Every replica must share it.
        database_url: SQLAlchemy URL; defaults to ``sqlite:///$CAREFLOW_DATA_DIR/careflow.db``.
        max_payload_bytes: largest accepted request body, in bytes.
        careflow_rate_limit: requests accepted per webhook and API process, in the ``limits``
            notation (``100/second;3000/minute``); more get 429 with ``Retry-After``.
        activity_max_attempts / activity_max_seconds: bounds of the transient-fault retries
            of every activity (attempts, and seconds of schedule-to-close time).
        careflow_max_concurrent_starts / careflow_start_wait_seconds: backpressure of the
            ingest route: at most this many workflow starts in flight per API process; a request
            that finds no free slot within the wait is answered 503 ``temporal_unavailable`` with
            ``Retry-After`` (nothing started, so a resend is safe).
        careflow_encryption_keys: the key ring of the payload codec and of the stored test
            payloads, ``id:base64key`` entries (32-byte keys), comma-separated, the first one
            encrypts; when unset, one key is generated once into
            ``$CAREFLOW_DATA_DIR/encryption-keys``.
        careflow_inline_eval_bytes / careflow_eval_processes / careflow_eval_seconds: a body up
            to this many bytes is parsed and validated on the event loop (microseconds to
            milliseconds); a larger one in one of ``careflow_eval_processes`` worker processes,
            within ``careflow_eval_seconds`` (past it the request is answered 202 RECEIVED and
            ``validate_request`` decides).
        careflow_body_read_seconds: time allowed to receive a whole request body, in seconds;
            a body still incomplete then is answered 408 ``request_timeout``.
        careflow_log_format: ``text`` or ``json`` (one JSON object per line).
        careflow_worker_nice: the worker lowers its CPU priority by this much at start (Unix
            ``nice``, 0-19), so on a shared machine the API's answers win the CPU over the
            worker's draining; 0: unchanged.
        careflow_worker_workflow_task_slots: workflow tasks the worker runs at once (each
            request's first task runs its built-in backend calls as local activities). Few
            slots pace a backlog's drain so the Temporal server still answers the API's starts
            quickly: with the SDK's default of 100, a draining worker's task completions queued
            ahead of the starts on the dev server (issue 19; ``bench/draining.py``).
        careflow_workflow_sandbox: run the workflows in Temporal's sandbox, which refuses
            non-deterministic calls at run time at about 9 ms of worker CPU per request. The
            test suite turns it on, so such a call fails CI; off in production.
        careflow_metrics_port: serve the API's Prometheus ``/metrics`` on this port instead of
            the API port (unset: on the API port).
        careflow_worker_metrics_port: the worker's Prometheus endpoint (Temporal SDK metrics and
            ours, ``/metrics``); unset or 0: no endpoint. Bound on ``careflow_worker_metrics_host``.
        careflow_alert_webhook_url / careflow_alert_webhook_secret: where the worker sends
            alerts (a request ended FAILED; a webhook's rejection rate crossed the threshold),
            signed per Standard Webhooks with the secret (``whsec_...``); unset URL: no alerts.
        careflow_alert_rejection_rate / _window_seconds / _min_requests: alert when, within the
            window, at least ``min_requests`` real requests reached a webhook and at least this
            fraction of them were REJECTED (unset rate: no rejection-rate alerts).
        careflow_ui_session_idle_seconds: a ``/ui`` session unused for this long is over.
        careflow_ui_sign_in_limit: failed ``/ui`` sign-ins allowed per client address and API
            process (``limits`` notation); more are answered 429 with ``Retry-After``.
        careflow_forwarded_allow_ips: the reverse proxies (IPs / CIDRs, comma-separated, or
            ``*``) whose ``X-Forwarded-For`` / ``-Proto`` uvicorn believes (``make run``); unset,
            forwarded headers are ignored, so a client cannot choose its sign-in throttle key.
        careflow_test_payloads_max_bytes: kept test payloads per webhook, in bytes of JSON
            (besides the newest 20); the newest payload is always kept.
        temporal_ui_port / temporal_ui_internal_port: under ``make run`` the Temporal UI is
            served on ``temporal_ui_port`` by the UI proxy (``api.temporal_ui_proxy``), in front
            of the dev server's own UI on the internal port (unset: ``temporal_ui_port + 1``).
        careflow_example_worker: ``make run`` also runs the example care-flow worker
            (``ExampleCareFlow`` on ``example-care-flows``).
        care_flow_pickup_seconds: how long ``start_care_flow`` (temporal backend) waits for a
            worker to run the started care flow's first workflow task before it retries.
        awell_api_url / awell_api_key / awell_timeout_seconds: Awell's Orchestration API
            (GraphQL endpoint, API key sent as ``apikey``, per-call timeout in seconds). Without
            both, definitions with ``backend: awell`` cannot be enabled.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    careflow_admin_token: str | None = None
    careflow_data_dir: Path = Path(".data")
    careflow_id_hash_key: str | None = None
    careflow_api_host: str = "127.0.0.1"
    careflow_api_port: int = 8000
    careflow_public_url: str | None = None
    careflow_task_queue: str = "careflow-webhooks"
    database_url: str | None = None
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: str | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_ui_port: int = 8233
    temporal_ui_internal_port: int | None = None
    temporal_ui_url: str | None = None
    max_payload_bytes: int = Field(default=1_048_576, gt=0)
    config_refresh_seconds: float = Field(default=1.0, gt=0)
    careflow_rate_limit: str = "100/second;3000/minute"
    activity_max_attempts: int = Field(default=10, ge=1)
    activity_max_seconds: float = Field(default=600.0, gt=0)
    careflow_max_concurrent_starts: int = Field(default=64, ge=1)
    careflow_start_wait_seconds: float = Field(default=0.25, gt=0)
    careflow_encryption_keys: str | None = None
    careflow_inline_eval_bytes: int = Field(default=8192, ge=0)
    careflow_eval_processes: int = Field(default=2, ge=1)
    careflow_eval_seconds: float = Field(default=2.0, gt=0)
    careflow_body_read_seconds: float = Field(default=30.0, gt=0)
    careflow_log_format: Literal["text", "json"] = "text"
    careflow_worker_nice: int = Field(default=0, ge=0, le=19)
    careflow_worker_workflow_task_slots: int = Field(default=4, ge=2)
    careflow_workflow_sandbox: bool = False
    careflow_metrics_port: int | None = None
    careflow_worker_metrics_host: str = "127.0.0.1"
    careflow_worker_metrics_port: int | None = 8001
    careflow_alert_webhook_url: str | None = None
    careflow_alert_webhook_secret: str | None = None
    careflow_alert_rejection_rate: float | None = Field(default=None, gt=0, le=1)
    careflow_alert_rejection_window_seconds: float = Field(default=300.0, gt=0)
    careflow_alert_rejection_min_requests: int = Field(default=20, ge=1)
    careflow_ui_session_idle_seconds: float = Field(default=1800.0, gt=0)
    careflow_ui_sign_in_limit: str = "5/minute;20/hour"
    careflow_forwarded_allow_ips: str | None = None
    careflow_test_payloads_max_bytes: int = Field(default=5_242_880, gt=0)
    careflow_example_worker: bool = True
    care_flow_pickup_seconds: float = Field(default=5.0, gt=0)
    awell_api_url: str | None = None
    awell_api_key: SecretStr | None = None
    awell_timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def patient_task_queue(self) -> str:
        """The task queue of patient-resolution workflows (remote backends): its own worker,
        so a ``resolve_patient`` activity waiting on one never holds the slot it needs."""
        return self.careflow_task_queue + "-patients"

    @property
    def unconfigured_backends(self) -> frozenset[str]:
        """Backend kinds whose settings are missing (their definitions cannot be enabled)."""
        if self.awell_api_url and self.awell_api_key and self.awell_api_key.get_secret_value():
            return frozenset()
        return frozenset({"awell"})

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.careflow_data_dir / 'careflow.db').resolve()}"

    @property
    def ui_base_url(self) -> str:
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def ui_internal_port(self) -> int:
        """The dev server's own Web UI port under ``make run`` (behind the UI proxy)."""
        return self.temporal_ui_internal_port or self.temporal_ui_port + 1

    @property
    def public_base_url(self) -> str:
        if self.careflow_public_url:
            return self.careflow_public_url.rstrip("/")
        return f"http://{self.careflow_api_host}:{self.careflow_api_port}"

    def admin_token(self) -> str:
        """The admin bearer token: as given, else read from or generated into the data dir.

        Never empty: a blank ``CAREFLOW_ADMIN_TOKEN`` counts as unset, and an empty token file
        (a process killed while writing it) is replaced by a new token. The file is written to a
        temporary name with mode 0600 and renamed into place, so it is never seen half-written.
        """
        given = (self.careflow_admin_token or "").strip()
        if given:
            return given
        path = self.careflow_data_dir / "admin-token"
        if path.exists():
            stored = path.read_text().strip()
            if stored:
                return stored
        self.careflow_data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        partial = path.with_name(f".admin-token.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
        os.replace(partial, path)
        return token

    @property
    def encryption_key_file(self) -> Path:
        """Where the embedded default key ring is kept (used when the setting is unset)."""
        return self.careflow_data_dir / "encryption-keys"

    def encryption_keys(self) -> str:
        """The key ring spec: ``CAREFLOW_ENCRYPTION_KEYS``, else the key file (generated once).

        The file holds one line in the same ``id:base64key,...`` form (so rotating the embedded
        ring is an edit of that line); it is created with mode 0600 under a temporary name and
        renamed into place, like the admin token, so it is never seen half-written. An empty
        file (a process killed while writing it) is replaced.
        """
        given = (self.careflow_encryption_keys or "").strip()
        if given:
            return given
        path = self.encryption_key_file
        blank = path.exists()
        if blank:
            stored = path.read_text().strip()
            if stored:
                return stored
        self.careflow_data_dir.mkdir(parents=True, exist_ok=True)
        raw = base64.b64encode(secrets.token_bytes(32)).decode()
        spec = f"local-{secrets.token_hex(4)}:{raw}"
        partial = path.with_name(f".encryption-keys.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(spec + "\n")
        if blank:  # an empty file is no ring: replace it
            os.replace(partial, path)
            return spec
        try:
            os.link(partial, path)  # never replaces a ring another process wrote meanwhile
        except FileExistsError:
            return path.read_text().strip()
        finally:
            os.unlink(partial)
        return spec


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
