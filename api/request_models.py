"""The request log's answer models and its visibility query: what ``GET /v1/requests`` and
the retry routes answer, and the SQL-like list filter sent to Temporal's visibility store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.request_runs import RunSummary
from careflow.conditions.models import IgnoredReason
from careflow.errors import DomainError
from careflow.messages import TimelineEntry
from careflow.models import Identifier, RequestError, RequestStatus
from infra import temporal


class RetryAnswer(BaseModel):
    request_id: str
    run_id: str
    status: RequestStatus


class BulkRetryAnswer(BaseModel):
    """``skipped_by_reason``: skip reason code → count (e.g. ``{"succeeded": 1}``)."""

    reset: int
    skipped: int
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)


class TemporalDetails(BaseModel):
    namespace: str
    workflow_id: str
    run_id: str | None
    ui_url: str


class RequestSummary(BaseModel):
    """``run_id``: the latest run's (the one a row shows)."""

    request_id: str
    webhook_id: str | None
    care_flow_definition_id: str | None
    status: RequestStatus
    received_at: datetime
    updated_at: datetime | None
    is_test: bool
    run_id: str | None = None


class PendingActivity(BaseModel):
    """An activity in progress, from ``describe().pending_activities``; no payload values."""

    activity_type: str
    attempt: int
    maximum_attempts: int
    last_failure: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None


class RequestDetail(RequestSummary):
    verdict: RequestStatus | None = None
    payload: Any = None
    data_points: dict[str, Any] = Field(default_factory=dict)
    patient_identifier: Identifier | None = None
    patient_id: str | None = None
    care_flow_id: str | None = None
    care_flow_ui_url: str | None = None
    errors: list[RequestError] = Field(default_factory=list)
    reasons: list[IgnoredReason] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    pending_activities: list[PendingActivity] = Field(default_factory=list)
    runs: list[RunSummary] = Field(default_factory=list)
    temporal: TemporalDetails


class RequestFilters(BaseModel):
    webhook_id: str | None = None
    status: RequestStatus | None = None
    care_flow_definition_id: str | None = None
    patient_id: str | None = None
    is_test: bool = False


def _quote(value: str) -> str:
    """A visibility-query string literal; values with quotes or backslashes are refused."""
    if any(c in "'\"\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in value) or len(value) > 200:
        raise DomainError(
            RequestError(
                code="invalid_filter",
                message="filter values cannot hold quotes or control characters",
            )
        )
    return f"'{value}'"


def visibility_query(filters: RequestFilters) -> str:
    """The Temporal visibility query (SQL-like list filter) for ``filters``."""
    clauses = [f"WorkflowType = '{temporal.WORKFLOW_TYPE}'"]
    for key, value in (
        ("WebhookId", filters.webhook_id),
        ("RequestStatus", filters.status.value if filters.status else None),
        ("CareFlowDefinitionId", filters.care_flow_definition_id),
        ("PatientId", filters.patient_id),
    ):
        if value is not None:
            clauses.append(f"{key} = {_quote(value)}")
    # Test requests end TEST: ``status=TEST`` lists them without ``is_test=true``.
    is_test = filters.is_test or filters.status == RequestStatus.TEST
    clauses.append(f"IsTest = {'true' if is_test else 'false'}")
    return " AND ".join(clauses)


def latest_runs_query(run_ids: Sequence[str]) -> str:
    """A Temporal UI list query for exactly these runs.

    Temporal's visibility keeps each run a retry or reset superseded, closed as it ended (a
    FAILED run stays ``ExecutionStatus="Failed"`` with ``RequestStatus="FAILED"``; only runs reset
    while still open become ``Terminated``) and has no column telling a superseded run from the
    latest one, so no filter on statuses lists only latest runs; naming the runs does.
    """
    quoted = ", ".join(_quote(r) for r in run_ids)
    return f"RunId IN ({quoted})" if run_ids else "RunId = ''"
