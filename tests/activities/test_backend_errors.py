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


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), backend_errors():
        raise KeyError("x")
