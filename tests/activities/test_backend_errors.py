"""Backend errors become Temporal retry decisions: transient → retryable, refusal → final."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.backend_errors import backend_errors
from backends.base import BackendRefusedError, BackendUnavailableError


def test_unavailable_backend_is_retryable() -> None:
    with pytest.raises(ApplicationError) as exc, backend_errors():
        raise BackendUnavailableError("timeout")
    assert exc.value.type == "backend_unavailable" and not exc.value.non_retryable


def test_refusal_is_final_and_keeps_the_code() -> None:
    with pytest.raises(ApplicationError) as exc, backend_errors():
        raise BackendRefusedError("care_flow_definition_unpublished", "not published")
    assert exc.value.type == "care_flow_definition_unpublished" and exc.value.non_retryable


def test_other_errors_are_retried_without_their_message() -> None:
    # A driver's message may quote the values it was given (PHI); Temporal stores a failure's
    # message and its causes in the history, so neither may carry it.
    secret = "MRN-SECRET-77"
    with pytest.raises(ApplicationError) as exc, backend_errors():
        raise ValueError(f"value too long for type character varying(1024): {secret}")
    assert exc.value.type == "backend_error" and not exc.value.non_retryable
    assert secret not in exc.value.message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
