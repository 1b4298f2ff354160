"""``validate_request``: parse the carried body, validate it against the current config."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from careflow.errors import TransientStoreError
from careflow.messages import ValidateRequestInput, ValidationResult
from careflow.models import RequestStatus
from careflow.payload import PayloadError, parse_body
from careflow.validation import validate, without_enabled_check
from infra import temporal
from persistence.config_cache import ConfigCache


class ValidationActivities:
    """Args: config: the worker's configuration cache (refreshed when the revision changes)."""

    def __init__(self, config: ConfigCache) -> None:
        self._config = config

    @activity.defn(name=temporal.VALIDATE_REQUEST)
    def validate_request(self, request: ValidateRequestInput) -> ValidationResult:
        """Validate a request; the authoritative verdict against the current configuration.

        Returns:
            SCHEDULED or REJECTED with every error found (never raises for bad payloads).

        Raises:
            ApplicationError: retryable, when the configuration cannot be read.
        """
        try:
            # Check the revision every time (one small query): a retry right after a fix must
            # see the fix, and only a changed revision reloads the configuration.
            snapshot = self._config.refresh()
        except TransientStoreError as exc:
            raise ApplicationError("configuration unavailable", type="store_unavailable") from exc
        try:
            body = parse_body(request.body, request.media_type)
        except PayloadError as exc:
            return ValidationResult(
                verdict=RequestStatus.REJECTED, errors=[exc.error], attempt=activity.info().attempt
            )
        result = validate(snapshot, request.webhook_id, body)
        if request.is_test or request.ignore_enabled:
            result = without_enabled_check(result)
        return result.model_copy(update={"attempt": activity.info().attempt})
