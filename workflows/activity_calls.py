"""How ``WebhookRequestWorkflow`` calls ``resolve_patient``, ``find_active_care_flow``,
``start_care_flow`` and ``claim_debounce_window`` (deterministic; issue 19).

With ``local_first`` (the built-in backend), one attempt runs as a local activity bounded by
``LOCAL_ATTEMPT_TIMEOUT``; a retryable failure or a timeout schedules the activity as a regular
one with the remaining attempts, after the PROCESSING status is written. An activity that fails
for good ends the request FAILED and the run Failed (``ActivityCalls.fail``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from careflow.models import RequestStatus
    from workflows.request_book import RequestBook, error_of

# One local attempt holds one of the worker's few workflow task slots
# (CAREFLOW_WORKER_WORKFLOW_TASK_SLOTS) while it runs, so it is short: the built-in backend
# answers in milliseconds; a slower answer (a locked database) goes on as a regular activity,
# leaving the slot to other requests (review of issue 19: with 5 s, four slow requests held up
# every other one for seconds).
LOCAL_ATTEMPT_TIMEOUT = timedelta(seconds=1)
In = TypeVar("In")
Out = TypeVar("Out")


class ActivityCalls:
    """Activity calls of one run.

    Args:
        book: the run's state and its writes.
        on_failed: awaited when the request ends FAILED, before the run fails (releases the
            debounce window the request holds).
    """

    def __init__(self, book: RequestBook, on_failed: Callable[[], Awaitable[None]]) -> None:
        self._book = book
        self._on_failed = on_failed

    async def run(
        self,
        method: Callable[[Any, In], Out],
        arg: In,
        options: dict[str, Any],
        *,
        local_first: bool = False,
    ) -> Out:
        """Run an activity method — with ``local_first``, one local attempt first (module
        docstring); when it fails for good, end the request FAILED and the run Failed.

        The result's ``attempt`` counts the local attempt: a regular activity's attempt 1 after
        a failed local one is attempt 2.
        """
        name = method.__name__  # the activity type names are the method names (contract §7)
        try:
            if local_first:
                try:
                    return await workflow.execute_local_activity_method(
                        method,
                        arg,
                        start_to_close_timeout=LOCAL_ATTEMPT_TIMEOUT,
                        retry_policy=RetryPolicy(maximum_attempts=1),
                    )
                except FailureError as exc:
                    # An ActivityError whose cause is the activity's ApplicationError, or a
                    # TimeoutError when the attempt outlived LOCAL_ATTEMPT_TIMEOUT.
                    policy: RetryPolicy = options["retry_policy"]
                    if isinstance(exc, CancelledError):
                        raise
                    if policy.maximum_attempts == 1 or _non_retryable(exc):
                        await self.fail(name, exc)
                    options = {**options, "retry_policy": _one_attempt_fewer(policy)}
                    code = "timeout" if _timed_out(exc) else error_of(exc).code
                    self._book.note(f"{name}: {code} on attempt 1 (local)")
            self._book.hold_in_flight = False  # a reader may watch this wait: show PROCESSING
            self._book.flush()
            result: Any = await workflow.execute_activity_method(method, arg, **options)
            if local_first:
                result = result.model_copy(update={"attempt": result.attempt + 1})
            return cast(Out, result)
        except ActivityError as exc:
            await self.fail(name, exc)

    async def fail(self, name: str, exc: BaseException) -> NoReturn:
        """End the request FAILED for activity ``name``'s failure and fail the run."""
        error = error_of(exc)
        self._book.set(RequestStatus.FAILED, errors=[error], message=f"{name}: {error.code}")
        self._book.flush()
        await self._on_failed()
        raise ApplicationError(error.message, type=error.code, non_retryable=True) from exc


def _one_attempt_fewer(policy: RetryPolicy) -> RetryPolicy:
    """The regular activity's retry policy after one local attempt (0, unbounded, stays so)."""
    if policy.maximum_attempts <= 1:
        return policy
    return dataclasses.replace(policy, maximum_attempts=policy.maximum_attempts - 1)


def _timed_out(exc: BaseException) -> bool:
    """Whether the local attempt failed by outliving its timeout (``error_of`` would call that
    ``activity_retries_exhausted``, though the retries are only starting)."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError)


def _non_retryable(exc: BaseException) -> bool:
    """Whether the failure, or the ``ApplicationError`` it wraps, is marked non-retryable."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.non_retryable
        cause = cause.__cause__
    return False
