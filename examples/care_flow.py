"""``ExampleCareFlow``: the smallest care flow the temporal backend can start.

It logs which baseline data points it got (their ids and count, never their values: they are
PHI), then waits for the ``complete`` signal or a timer, and returns a PHI-free summary. Replace
it with your own workflow: any workflow type that takes one JSON argument shaped like
``careflow.messages.CareFlowWorkflowInput`` works.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from careflow.messages import CareFlowWorkflowInput

WORKFLOW_TYPE = "ExampleCareFlow"
TASK_QUEUE = "example-care-flows"
COMPLETE_SIGNAL = "complete"
WAIT = timedelta(days=7)


class ExampleCareFlowResult(BaseModel):
    request_id: str
    data_point_ids: list[str]
    completed_by: str


@workflow.defn(name=WORKFLOW_TYPE)
class ExampleCareFlow:
    """Logs the data point ids, then waits for ``complete`` or ``WAIT`` (seven days)."""

    def __init__(self) -> None:
        self._completed = False
        self._data_point_ids: list[str] = []

    @workflow.signal(name=COMPLETE_SIGNAL)
    def complete(self) -> None:
        self._completed = True

    @workflow.query(name="data_point_ids")
    def data_point_ids(self) -> list[str]:
        return self._data_point_ids

    @workflow.run
    async def run(self, care_flow: CareFlowWorkflowInput) -> ExampleCareFlowResult:
        self._data_point_ids = sorted(care_flow.data_points)
        workflow.logger.info(
            "care flow %s for request %s got %d data points: %s",
            care_flow.care_flow_definition_id,
            care_flow.request_id,
            len(self._data_point_ids),
            ", ".join(self._data_point_ids),
        )
        try:
            await workflow.wait_condition(lambda: self._completed, timeout=WAIT)
            completed_by = "signal"
        except TimeoutError:
            completed_by = "timer"
        return ExampleCareFlowResult(
            request_id=care_flow.request_id,
            data_point_ids=self._data_point_ids,
            completed_by=completed_by,
        )
