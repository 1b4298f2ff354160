"""``AlertWorkflow``: deliver one alert durably — ``send_alert`` with retries and backoff.

Started by ``workflows/telemetry.py`` as an abandoned child of a request that ends FAILED
(``ParentClosePolicy.ABANDON``: it outlives the failed run), or by the API when a webhook's
rejection rate crosses the threshold. It never touches the request: an alert that cannot be
delivered is logged and counted (``careflow_alerts_abandoned_total``) when the retries run out,
and the alert workflow still completes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities
    from careflow.alerts import AlertInput, AlertResult
    from infra import temporal

# Backoff 1 s, 2 s, 4 s … capped at 5 min, for at most 12 attempts within 2 hours.
ALERT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=12,
)
ALERT_DEADLINE = timedelta(hours=2)


@workflow.defn(name=temporal.ALERT_WORKFLOW_TYPE)
class AlertWorkflow:
    """Sends one alert; completes whether or not it was delivered."""

    @workflow.run
    async def run(self, alert: AlertInput) -> AlertResult | None:
        try:
            return await workflow.execute_activity_method(
                AlertActivities.send_alert,
                alert,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=ALERT_DEADLINE,
                retry_policy=ALERT_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("alert %s abandoned: retries exhausted", alert.type)
            workflow.metric_meter().create_counter(
                "careflow_alerts_abandoned", "Alerts given up after every retry."
            ).add(1, {"type": alert.type})
            return None
