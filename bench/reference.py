"""The e2e benchmark's reference: ``WebhookRequestWorkflow`` itself, with no-op activities.

``BenchReferenceWorkflow`` is ``WebhookRequestWorkflow`` (``workflows/request.py``), subclassed
only to be registered under another name. So it is the same code: it takes the same input
(``WebhookRequestInput``, body included), runs the same three activities by the same names with
the same options (timeouts, retry policy), writes the same search attributes and the same memo
once per workflow task at the same points, and returns the same ``RequestState``; its history
cannot drift from ours. Its activities do nothing: they return results of the same models and
sizes (constants, fresh ids), without the database, the configuration cache or the mapping. So
``e2e_rate / reference_rate`` is what our own code costs on top of what Temporal, the SDK and the
workflow's orchestration cost.

The worker (``python bench/reference.py``, settings from the environment like ``worker.py``) gets
the very arguments ``worker.build_worker`` passes to ``Worker`` (captured, not copied), with only
the workflows and activities swapped, on a thread pool of the size ``worker.py`` uses, so tuning
``build_worker`` tunes the reference too.

Like ``workflows/request.py``, this module may run in the workflow sandbox
(``CAREFLOW_WORKFLOW_SANDBOX``), so its top-level imports follow that file's; the worker's own
imports are inside ``main``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from careflow import messages
    from careflow.models import Identifier, RequestStatus
    from infra import temporal

from workflows.request import WebhookRequestWorkflow

REFERENCE_WORKFLOW_TYPE = "BenchReferenceWorkflow"
# worker.py's main(): ThreadPoolExecutor(max_workers=16), max_concurrent_activities = 16.
WORKER_THREADS = 16

# What validate_request maps from the FHIR sample (bench/run.py's webhook), as constants.
_DATA_POINTS: dict[str, Any] = {"mrn": "24680", "deceased": False, "contact_family": "du Exemplé"}
_IDENTIFIER = Identifier(system="urn:oid:1.2.36.146.595.217.0.1", value="24680")
_PATIENT_ID = "pat_" + "0" * 32


# --- no-op activities (synchronous, on the worker's thread pool, like ours) -------------------


@activity.defn(name=temporal.VALIDATE_REQUEST)
def validate_request(request: messages.ValidateRequestInput) -> messages.ValidationResult:
    return messages.ValidationResult(
        verdict=RequestStatus.SCHEDULED,
        care_flow_definition_id="intake",
        data_points=dict(_DATA_POINTS),
        patient_identifier=_IDENTIFIER,
        backend_kind="builtin",  # the bench's definition: local activities first, like ours
        attempt=activity.info().attempt,
    )


@activity.defn(name=temporal.RESOLVE_PATIENT)
def resolve_patient(request: messages.ResolvePatientInput) -> messages.ResolvePatientResult:
    return messages.ResolvePatientResult(
        patient_id=_PATIENT_ID, created=False, anonymous=False, attempt=activity.info().attempt
    )


@activity.defn(name=temporal.START_CARE_FLOW)
def start_care_flow(request: messages.StartCareFlowInput) -> messages.StartCareFlowResult:
    return messages.StartCareFlowResult(
        care_flow_id="cf_" + uuid.uuid4().hex, created=True, attempt=activity.info().attempt
    )


ACTIVITIES: list[Callable[..., Any]] = [validate_request, resolve_patient, start_care_flow]


# --- the workflow: WebhookRequestWorkflow under the reference's name ------------------------


@workflow.defn(name=REFERENCE_WORKFLOW_TYPE)
class ReferenceWorkflow(WebhookRequestWorkflow):
    """``WebhookRequestWorkflow``, unchanged (the SDK wants ``@workflow.run`` on the class)."""

    @workflow.run
    async def run(self, request: messages.WebhookRequestInput) -> messages.RequestState:
        return await super().run(request)


# --- the worker --------------------------------------------------------------------------------


def worker_arguments(
    client: Any, settings: Any, executor: Any, store: Any = None
) -> dict[str, Any]:
    """The keyword arguments ``worker.build_worker`` gives ``Worker`` (nothing is built); the
    activities use ``store`` (default: an in-memory one, never touched by no-op activities)."""
    import worker as worker_module
    from persistence.store import Store

    captured: dict[str, Any] = {}

    def capture(client: Any, **kwargs: Any) -> None:
        captured.update(kwargs, client=client)

    real = worker_module.Worker
    worker_module.Worker = capture  # type: ignore[assignment,misc]
    try:
        # The in-memory store is never touched: build_worker only wraps it.
        worker_module.build_worker(client, store or Store("sqlite://"), settings, executor)
    finally:
        worker_module.Worker = real  # type: ignore[misc]
    return captured


async def main() -> None:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from careflow import logs
    from careflow.settings import get_settings

    logs.configure()
    settings = get_settings()
    client = await temporal.connect(settings)
    with ThreadPoolExecutor(max_workers=WORKER_THREADS) as executor:
        # worker.py's settings, exactly, with only the workflows and activities swapped.
        arguments = worker_arguments(client, settings, executor)
        arguments.update(workflows=[ReferenceWorkflow], activities=ACTIVITIES)
        worker = Worker(**arguments)
        logging.getLogger("bench.reference").info(
            "reference worker polling task queue %s", settings.careflow_task_queue
        )
        await worker.run()


if __name__ == "__main__":
    import asyncio
    import contextlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # worker.py, bench.*
    # Run the imported module, not __main__: the sandbox re-imports a workflow by module name.
    from bench import reference

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(reference.main())
