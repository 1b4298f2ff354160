"""``validate_request``: parse the carried body, validate it against the current config."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from careflow.debounce import window_id
from careflow.errors import TransientStoreError
from careflow.evaluation import Evaluation, EvaluationJob, evaluate, slice_for
from careflow.messages import ValidateRequestInput, ValidationResult
from careflow.models import RequestError, RequestStatus
from careflow.snapshot import ConfigSnapshot
from careflow.validation import without_enabled_check
from infra import temporal
from infra.evaluation_pool import EvaluationPool
from persistence.config_cache import ConfigCache

# A body up to this size is evaluated in the activity's thread; a larger one in a worker process
# of this worker, within a budget under the activity's 30 s start-to-close timeout (issue 15).
INLINE_BYTES = 8192
POOL_PROCESSES = 2
BUDGET_SECONDS = 20.0


class ValidationActivities:
    """Args: config: the worker's configuration cache (refreshed when the revision changes);
    id_hash_key: the id hash key (``careflow.keyed_ids``), to name a SCHEDULED request's debounce
    window; None names none (a retried request then is not debounced)."""

    def __init__(self, config: ConfigCache, id_hash_key: bytes | None = None) -> None:
        self._config = config
        self._id_hash_key = id_hash_key
        self._pool = EvaluationPool(POOL_PROCESSES, BUDGET_SECONDS)

    def _evaluate(self, snapshot: ConfigSnapshot, request: ValidateRequestInput) -> Evaluation:
        hook = snapshot.webhooks.get(request.webhook_id)
        debounce = hook.debounce if hook is not None and self._id_hash_key else None
        if len(request.body) <= INLINE_BYTES:
            return evaluate(
                EvaluationJob(
                    request.body,
                    request.media_type,
                    snapshot,
                    request.webhook_id,
                    debounce=debounce,
                )
            )
        sliced = slice_for(snapshot, request.webhook_id)
        job = EvaluationJob(
            request.body, request.media_type, sliced, request.webhook_id, debounce=debounce
        )
        return self._pool.evaluate_blocking(job)

    @activity.defn(name=temporal.VALIDATE_REQUEST)
    def validate_request(self, request: ValidateRequestInput) -> ValidationResult:
        """Validate a request; the authoritative verdict against the current configuration.

        Returns:
            SCHEDULED or REJECTED with every error found (never raises for bad payloads);
            REJECTED ``mapping_too_costly`` when parsing and mapping a large body take more than
            ``BUDGET_SECONDS`` (fix the mapping, e.g. replace ``$..x`` by a path, and retry).

        Raises:
            ApplicationError: retryable ``store_unavailable`` when the configuration cannot be
                read; retryable ``evaluation_busy`` when a large body waited ``BUDGET_SECONDS``
                for a free evaluation process; non-retryable ``internal_error`` (naming only
                the exception's class, never its message, which may quote the payload) when
                validation itself fails.
        """
        try:
            # Check the revision every time (one small query): a retry right after a fix must
            # see the fix, and only a changed revision reloads the configuration.
            snapshot = self._config.refresh()
        except TransientStoreError as exc:
            raise ApplicationError("configuration unavailable", type="store_unavailable") from exc
        try:
            evaluation = self._evaluate(snapshot, request)
        except CancelledError:
            raise  # the activity was cancelled or timed out while waiting: not a verdict
        except Exception as exc:  # a defect: final, and its message (maybe PHI) stays out
            raise ApplicationError(
                f"validation raised {type(exc).__name__}", type="internal_error", non_retryable=True
            ) from None
        if evaluation.queued_too_long:
            # Every evaluation process was busy (other large bodies): not this body's fault.
            raise ApplicationError("the evaluation processes are busy", type="evaluation_busy")
        if evaluation.error is not None:
            return ValidationResult(
                verdict=RequestStatus.REJECTED,
                errors=[evaluation.error],
                attempt=activity.info().attempt,
            )
        result = evaluation.result or ValidationResult(
            verdict=RequestStatus.REJECTED,
            errors=[_TOO_COSTLY],
            care_flow_definition_id=_definition_id(snapshot, request.webhook_id),
        )
        if request.is_test or request.ignore_enabled:
            result = without_enabled_check(result)
        update: dict[str, object] = {"attempt": activity.info().attempt}
        definition = snapshot.definitions.get(result.care_flow_definition_id or "")
        if definition is not None:
            update["backend_kind"] = definition.backend.kind
        hook = snapshot.webhooks.get(request.webhook_id)
        debounce = hook.debounce if hook is not None else None
        key = evaluation.debounce_key
        if result.verdict == RequestStatus.SCHEDULED and debounce and self._id_hash_key and key:
            update["debounce_window_id"] = window_id(request.webhook_id, key, self._id_hash_key)
            update["debounce_seconds"] = debounce.seconds
        return result.model_copy(update=update)


_TOO_COSTLY = RequestError(
    code="mapping_too_costly",
    message=f"parsing and mapping the body took more than {BUDGET_SECONDS:g} s",
)


def _definition_id(snapshot: ConfigSnapshot, webhook_id: str) -> str | None:
    hook = snapshot.webhooks.get(webhook_id)
    return hook.care_flow_definition_id if hook else None
