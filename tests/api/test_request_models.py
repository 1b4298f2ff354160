"""The request log's visibility query: filters become clauses; unsafe values are refused."""

from __future__ import annotations

import pytest

from api.request_models import RequestFilters, visibility_query
from careflow.errors import DomainError
from careflow.models import RequestStatus


def test_default_filter_lists_real_requests_of_our_workflow_type() -> None:
    assert visibility_query(RequestFilters()) == (
        "WorkflowType = 'WebhookRequestWorkflow' AND IsTest = false"
    )


def test_every_filter_becomes_a_clause() -> None:
    query = visibility_query(
        RequestFilters(
            webhook_id="wh_1",
            status=RequestStatus.FAILED,
            care_flow_definition_id="intake",
            patient_id="pat_1",
            is_test=True,
        )
    )
    assert query == (
        "WorkflowType = 'WebhookRequestWorkflow' AND WebhookId = 'wh_1' AND "
        "RequestStatus = 'FAILED' AND CareFlowDefinitionId = 'intake' AND "
        "PatientId = 'pat_1' AND IsTest = true"
    )


@pytest.mark.parametrize("value", ["a' OR '1'='1", 'x"y', "back\\slash", "nul\x00", "x" * 201])
def test_values_that_could_escape_the_literal_are_refused(value: str) -> None:
    with pytest.raises(DomainError) as exc:
        visibility_query(RequestFilters(webhook_id=value))
    assert exc.value.errors[0].code == "invalid_filter"
