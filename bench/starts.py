"""The workflow start the ingest handler makes (``api/ingest.py``), made by the bench directly.

``bench/load.py raw --shape ingest`` measures how fast a plain client can make it, and
``bench/phases.py`` enqueues the reference workflows with it: the same input model with the body,
the same search attributes and the same static summary as the README walkthrough's FHIR webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from careflow.messages import WebhookRequestInput
from careflow.models import RequestStatus
from infra import temporal

WEBHOOK_NAME = "FHIR patient feed"
CARE_FLOW_DEFINITION_ID = "intake"


async def start_like_ingest(
    client: Client,
    workflow: str,
    *,
    request_id: str,
    webhook_id: str,
    body: bytes,
    task_queue: str,
) -> WorkflowHandle[Any, Any]:
    """Start ``workflow`` with what ingest starts for an accepted (SCHEDULED) JSON request.

    Args:
        client: a client with the pydantic data converter (``infra.temporal.connect``).
        workflow: the workflow type name.
        request_id: the request id, also the workflow id.
        webhook_id: the webhook the request came to (search attribute and input).
        body: the raw payload bytes carried in the input.
        task_queue: where the workflow's tasks go.

    Returns:
        The started workflow's handle.
    """
    return await client.start_workflow(
        workflow,
        WebhookRequestInput(
            request_id=request_id,
            webhook_id=webhook_id,
            webhook_name=WEBHOOK_NAME,
            care_flow_definition_id=CARE_FLOW_DEFINITION_ID,
            received_at=datetime.now(UTC),
            body=body,
            media_type="application/json",
            handler_status=RequestStatus.SCHEDULED,
            memo_on_completion=False,  # as the ingest handler starts it
            local_first=True,
        ),
        id=request_id,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(temporal.SA_WEBHOOK_ID, webhook_id),
                SearchAttributePair(temporal.SA_CARE_FLOW_DEFINITION_ID, CARE_FLOW_DEFINITION_ID),
                SearchAttributePair(temporal.SA_REQUEST_STATUS, "RECEIVED"),
                SearchAttributePair(temporal.SA_IS_TEST, False),
            ]
        ),
        static_summary=f"{WEBHOOK_NAME} → {CARE_FLOW_DEFINITION_ID}",
    )
