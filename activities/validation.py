"""``validate_request``: parse the carried body, validate it against the current config."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from careflow.debounce import key_text, window_id
from careflow.errors import TransientStoreError
from careflow.messages import ValidateRequestInput, ValidationResult
from careflow.models import RequestStatus
from careflow.payload import PayloadError, parse_body
from careflow.validation import validate, without_enabled_check
from infra import temporal
from persistence.config_cache import ConfigCache


class ValidationActivities:
    """Args: config: the worker's configuration cache (refreshed when the revision changes);
    id_hash_key: the id hash key (``careflow.keyed_ids``), to name a SCHEDULED request's debounce
    window; None names none (a retried request then is not debounced)."""

    def __init__(self, config: ConfigCache, id_hash_key: bytes | None = None) -> None:
        self._config = config
        self._id_hash_key = id_hash_key

    @activity.defn(name=temporal.VALIDATE_REQUEST)
    def validate_request(self, request: ValidateRequestInput) -> ValidationResult:
        """Validate a request; the authoritative verdict against the current configuration.

        Returns:
            SCHEDULED or REJECTED with every error found (never raises for bad payloads).

        Raises:
            ApplicationError: retryable ``store_unavailable`` when the configuration cannot be
                read; non-retryable ``internal_error`` (naming only the exception's class, never
                its message, which may quote the payload) when validation itself fails.
        """
        try:
            # Check the revision every time (one small query): a retry right after a fix must
            # see the fix, and only a changed revision reloads the configuration.
            snapshot = self._config.refresh()
        except TransientStoreError as exc:
            raise ApplicationError("configuration unavailable", type="store_unavailable") from exc
        try:
            body = parse_body(request.body, request.media_type)
            result = validate(snapshot, request.webhook_id, body)
        except PayloadError as exc:
            return ValidationResult(
                verdict=RequestStatus.REJECTED, errors=[exc.error], attempt=activity.info().attempt
            )
        except Exception as exc:  # a defect: final, and its message (maybe PHI) stays out
            raise ApplicationError(
                f"validation raised {type(exc).__name__}", type="internal_error", non_retryable=True
            ) from None
        if request.is_test or request.ignore_enabled:
            result = without_enabled_check(result)
        update: dict[str, object] = {"attempt": activity.info().attempt}
        hook = snapshot.webhooks.get(request.webhook_id)
        debounce = hook.debounce if hook is not None else None
        if result.verdict == RequestStatus.SCHEDULED and debounce and self._id_hash_key:
            key = key_text(debounce, body)
            if key is not None:
                update["debounce_window_id"] = window_id(request.webhook_id, key, self._id_hash_key)
                update["debounce_seconds"] = debounce.seconds
        return result.model_copy(update=update)
