"""Backend errors become Temporal retry decisions: transient → retryable, refusal → final."""

from __future__ import annotations

import logging

import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.backend_errors import backend_errors
from backends.base import BackendRefusedError, BackendUnavailableError
from tests.conftest import Api, RunningWorker
from tests.factories import configure_fhir_webhook, failed_request


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


def test_refusal_is_one_log_line_and_benign(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ApplicationError) as exc, backend_errors():
        raise BackendRefusedError("care_flow_definition_unpublished", "not published")
    assert exc.value.category == ApplicationErrorCategory.BENIGN
    [record] = [r for r in caplog.records if r.name == "activities.backend_errors"]
    assert record.getMessage() == (
        "care-flow backend refused for good: care_flow_definition_unpublished"
    )
    assert record.exc_info is None


async def test_expected_failure_logs_no_traceback(
    api: Api, worker: RunningWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """An unpublished definition (issue 17, point 9): one line, no chained traceback."""
    caplog.set_level(logging.INFO)
    hook = await configure_fhir_webhook(api)
    request_id = await failed_request(api, worker, hook["id"])
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == [
        f"start_care_flow of request {request_id} refused for good: "
        "care_flow_definition_unpublished"
    ]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)
