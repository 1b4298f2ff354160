"""Backend errors → Temporal retry decisions, shared by the activities that call a backend."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from backends.base import BackendRefusedError, BackendUnavailableError

log = logging.getLogger(__name__)


@contextmanager
def backend_errors() -> Iterator[None]:
    """Translate the care-flow backend's errors for Temporal.

    Raises:
        ApplicationError: retryable ``backend_unavailable`` for ``BackendUnavailableError``;
            non-retryable, typed with the backend's code, for ``BackendRefusedError``;
            retryable ``backend_error`` for anything else, naming only the exception's class.
            The original is never chained: Temporal stores a failure's message and causes in
            the history, and a driver's message may quote the values it was given (PHI).
    """
    try:
        yield
    except BackendUnavailableError as exc:
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        raise ApplicationError(
            exc.public_message or "care-flow backend unavailable",
            type=exc.code,
            next_retry_delay=delay,
        ) from None
    except BackendRefusedError as exc:
        # An expected outcome (e.g. an unpublished definition), not a defect: one line here,
        # and BENIGN keeps the SDK from logging it again with a traceback.
        log.warning("%s refused for good: %s", _where(), exc.code)
        raise ApplicationError(
            exc.message,
            type=exc.code,
            non_retryable=True,
            category=ApplicationErrorCategory.BENIGN,
        ) from None
    except Exception as exc:
        log.warning("care-flow backend raised %s", type(exc).__name__)
        raise ApplicationError(
            f"the care-flow backend raised {type(exc).__name__}", type="backend_error"
        ) from None


def _where() -> str:
    """``<activity type> of request <workflow id>`` inside an activity (ids only, no PHI)."""
    if not activity.in_activity():
        return "care-flow backend"
    info = activity.info()
    return f"{info.activity_type} of request {info.workflow_id}"
