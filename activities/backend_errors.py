"""Backend errors → Temporal retry decisions, shared by the activities that call a backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from backends.base import BackendRefusedError, BackendUnavailableError


@contextmanager
def backend_errors() -> Iterator[None]:
    """Translate the care-flow backend's errors for Temporal.

    Raises:
        ApplicationError: retryable ``backend_unavailable`` for ``BackendUnavailableError``;
            non-retryable, typed with the backend's code, for ``BackendRefusedError``.
    """
    try:
        yield
    except BackendUnavailableError as exc:
        raise ApplicationError("care-flow backend unavailable", type="backend_unavailable") from exc
    except BackendRefusedError as exc:
        raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc
