"""``PatientResolutionWorkflow``: one find-or-create of a patient in a remote backend.

Its workflow id is a hash of the identifier, and it is started with conflict policy
USE_EXISTING: every request that needs this patient while it runs attaches to it and shares its
result, so one identifier gets one ``createPatient`` however many requests arrive at once, on
any replica. It runs on its own task queue (``<CAREFLOW_TASK_QUEUE>-patients``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.remote_patients import RemotePatientActivities
    from careflow.messages import RemotePatientInput, RemotePatientResult
    from infra import temporal


@workflow.defn(name=temporal.PATIENT_RESOLUTION_WORKFLOW)
class PatientResolutionWorkflow:
    """Runs ``resolve_remote_patient`` with bounded retries; fails with the activity's error
    type (non-retryable when the backend refused, so callers do not try again)."""

    @workflow.run
    async def run(self, request: RemotePatientInput) -> RemotePatientResult:
        try:
            return await workflow.execute_activity_method(
                RemotePatientActivities.resolve_remote_patient,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(seconds=90),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=15),
                    maximum_attempts=6,
                ),
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type:
                raise ApplicationError(
                    cause.message, type=cause.type, non_retryable=cause.non_retryable
                ) from None
            raise ApplicationError(
                "the patient resolution did not complete within its retry bounds",
                type="patient_resolution_failed",
            ) from None
