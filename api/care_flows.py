"""Care flows read back from wherever they started: the built-in store, Temporal (temporal
backend: the care flow is a workflow execution) or the record of an awell pathway."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from api.deps import Services
from backends.temporal_workflow import describe_care_flow, is_temporal_care_flow_id
from careflow.answers import CareFlow
from careflow.errors import NotFoundError
from careflow.models import RequestError


async def find_care_flow(services: Services, care_flow_id: str) -> CareFlow:
    """The care flow with this id, from its backend.

    Raises:
        NotFoundError: no such care flow (404 ``care_flow_not_found``).
        RPCError: Temporal unreachable for a temporal-backend id (503 ``temporal_unavailable``).
    """
    if is_temporal_care_flow_id(care_flow_id):
        found = await describe_care_flow(
            services.client, care_flow_id, services.requests.ui_url(care_flow_id)
        )
        if found is None:
            raise NotFoundError(
                RequestError(code="care_flow_not_found", message="care flow not found")
            )
        return found
    try:
        return await run_in_threadpool(services.store.patients.get_care_flow, care_flow_id)
    except NotFoundError:
        record = await run_in_threadpool(
            services.store.backend_care_flows.by_care_flow_id, care_flow_id
        )
        if record is None or record.care_flow_id is None:
            raise
    # An awell pathway started here: its data points live in Awell.
    return CareFlow(
        id=record.care_flow_id,
        care_flow_definition_id=record.care_flow_definition_id,
        patient_id=record.patient_id,
        data_points={},
        request_id=record.request_id,
        started_at=record.started_at or record.attempted_at,
        backend=record.backend,
    )
