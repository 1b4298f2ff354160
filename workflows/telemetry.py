"""A worker interceptor on ``WebhookRequestWorkflow``: counts each request's terminal status,
writes one structured outcome line, and starts the FAILED alert — without a line in the
workflow's own code.

Replays: a workflow's code runs again whenever a worker rebuilds its state from history (cache
eviction, a worker restart, a query on a closed run), so anything recorded from workflow code
would be counted twice. ``workflow.metric_meter()`` and ``workflow.logger`` are replay-safe (they
record nothing while ``workflow.unsafe.is_replaying()``), and a command such as the alert's child
start is matched against history on replay instead of being sent again. The counter
(``careflow_requests_completed_total``) is exported by the Temporal SDK's Prometheus endpoint
with its own metrics. (A worker that dies after recording a terminal status but before its
workflow task completes may count that request again when the task is retried: rare, and
always over-counts rather than loses.)

The FAILED alert is an ``AlertWorkflow`` child started with ``ParentClosePolicy.ABANDON`` just
before the run fails: durable (it survives the failed run and worker restarts), retried with
backoff by its own retry policy, and unable to change the request's outcome — a child that
cannot be started is logged and the request fails as it would have. The status (FAILED) is
already in the search attribute and memo at that point; the extra workflow task only delays the
run's close by one round trip. Whether alerts are on (``CAREFLOW_ALERT_WEBHOOK_URL``) is part
of the worker's code as far as replay goes: a closed FAILED run is replayed only to answer a
query on it (the API queries open runs only), and a reset replays up to its first task.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from careflow import logs
    from careflow.alerts import REQUEST_FAILED, AlertInput
    from careflow.messages import RequestState, WebhookRequestInput
    from careflow.models import RequestStatus
    from infra import temporal
    from workflows.alerts import AlertWorkflow


class _RequestOutcomeInbound(WorkflowInboundInterceptor):
    alerts = False  # set on the subclass ``RequestTelemetryInterceptor`` builds

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        if info.workflow_type != temporal.WORKFLOW_TYPE or not input.args:
            return await super().execute_workflow(input)
        request = input.args[0]
        if not isinstance(request, WebhookRequestInput):
            return await super().execute_workflow(input)
        try:
            result = await super().execute_workflow(input)
        except ApplicationError as exc:
            codes = [exc.type] if exc.type else []
            self._record(request, RequestStatus.FAILED.value, codes)
            if self.alerts:
                await self._alert(request, codes)
            raise
        if isinstance(result, RequestState):
            codes = sorted({e.code for e in result.errors})
            self._record(request, result.status.value, codes)
        return result

    @staticmethod
    def _record(request: WebhookRequestInput, status: str, codes: list[str]) -> None:
        attributes = {
            "webhook_id": request.webhook_id,
            "care_flow_definition_id": request.care_flow_definition_id,
            "status": status,
        }
        workflow.metric_meter().create_counter(
            "careflow_requests_completed",
            "Requests reaching a terminal status, by webhook and care flow definition.",
        ).add(1, attributes)
        workflow.logger.info(
            "request outcome webhook=%s status=%s codes=%s",
            request.webhook_id,
            status,
            ",".join(codes) or "-",
            extra={
                "request_id": request.request_id,
                "webhook_id": request.webhook_id,
                "status": status,
                "codes": codes,
            },
        )

    @staticmethod
    async def _alert(request: WebhookRequestInput, codes: list[str]) -> None:
        info = workflow.info()
        alert_id = f"{request.request_id}-alert-{info.run_id}"
        alert = AlertInput(
            alert_id=alert_id,
            type=REQUEST_FAILED,
            webhook_id=request.webhook_id,
            care_flow_definition_id=request.care_flow_definition_id,
            at=workflow.now(),
            request_id=request.request_id,
            run_id=info.run_id,
            errors=codes,
        )
        try:
            await workflow.start_child_workflow(
                AlertWorkflow.run,
                alert,
                id=alert_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"alert: request {request.request_id} FAILED",
            )
        except Exception as exc:  # the alert never changes the request's outcome
            workflow.logger.warning("FAILED alert not started: %s", type(exc).__name__)


class _RequestIdActivityInbound(ActivityInboundInterceptor):
    """Binds the request id (the workflow id) for every log line an activity writes; the SDK
    copies the context into the thread a synchronous activity runs on."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        token = logs.bind_request_id(activity.info().workflow_id)
        try:
            return await super().execute_activity(input)
        finally:
            logs.unbind_request_id(token)


class RequestTelemetryInterceptor(Interceptor):
    """Worker interceptor: terminal-status counter, outcome log line, FAILED alerts, and the
    request id on activities' log lines.

    Args:
        alerts: start an ``AlertWorkflow`` for each request that ends FAILED (an alert URL is
            configured).
    """

    def __init__(self, *, alerts: bool) -> None:
        self._inbound: type[WorkflowInboundInterceptor] = type(
            "RequestOutcomeInbound", (_RequestOutcomeInbound,), {"alerts": alerts}
        )

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RequestIdActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return self._inbound
